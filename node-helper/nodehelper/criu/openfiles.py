"""The regular files the dumped processes had open, with the size CRIU recorded, from checkpoint/files.img.

CRIU restores an open file only if it still has the size it had at the dump, so the operator truncates volume files
that grew after the dump back to these sizes. CRIU records no size for a write-only O_APPEND file (a log: it skips
the check on restore); its offset is the end of the file as of its last write, so that is its size at the dump as
far as this process knows, and the restored process appends from there again."""

from __future__ import annotations

from pathlib import Path

from nodehelper.criu.imagefile import IMG_COMMON_MAGIC, WIRE_LEN, WIRE_VARINT, archive_member, entries, fields

FILES_MAGIC = 0x56303138
MAX_OPEN_FILES = 10_000
_MAX_FILES_IMG_BYTES = 64 << 20
# criu images/fdinfo.proto: file_entry.type = 1 (fd_types REG = 1), file_entry.reg = 3;
# images/regfile.proto: reg_file_entry.flags = 2, .pos = 3, .name = 6, .size = 8.
_FILE_TYPE, _FILE_REG, _FD_TYPE_REG = 1, 3, 1
_REG_FLAGS, _REG_POS, _REG_NAME, _REG_SIZE = 2, 3, 6, 8
_O_APPEND = 0o2000


def parse_files_img(data: bytes, limit: int = MAX_OPEN_FILES) -> list[dict[str, str | int]]:
    """[{"path", "size"}] of each regular file with a recorded size, or else an append offset, at most `limit`.

    A recorded size is the file's own (the same for every descriptor of it); of several appending descriptors
    (processes sharing a log), the one that wrote last has the largest offset: nothing before it is cut."""
    sized: dict[str, int] = {}
    appended: dict[str, int] = {}
    for entry in entries(data, (IMG_COMMON_MAGIC, FILES_MAGIC), "files.img"):
        top = {number: value for number, _, value in fields(entry)}
        reg = top.get(_FILE_REG)
        if top.get(_FILE_TYPE) != _FD_TYPE_REG or not isinstance(reg, bytes):
            continue
        numbers = {
            number: value for number, wire, value in fields(reg) if wire == WIRE_VARINT and isinstance(value, int)
        }
        names = [v for number, wire, v in fields(reg) if number == _REG_NAME and wire == WIRE_LEN]
        if not names or not isinstance(names[0], bytes):
            continue
        name = names[0].decode("utf-8", "replace")
        pos = numbers.get(_REG_POS, 0)
        if numbers.get(_REG_SIZE) is not None:
            sized.setdefault(name, numbers[_REG_SIZE])
        elif numbers.get(_REG_FLAGS, 0) & _O_APPEND and pos > 0:
            appended[name] = max(pos, appended.get(name, 0))
    found = {**sized, **{name: pos for name, pos in appended.items() if name not in sized}}
    return [{"path": path, "size": size} for path, size in list(found.items())[:limit]]


def read_open_files(archive: Path) -> list[dict[str, str | int]]:
    return parse_files_img(archive_member(archive, "checkpoint/files.img", _MAX_FILES_IMG_BYTES))
