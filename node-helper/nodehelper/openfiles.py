"""The regular files the dumped processes had open, with the size CRIU recorded, from checkpoint/files.img.

CRIU restores an open file only if it still has the size it had at the dump, so the operator truncates volume files
that grew after the dump back to these sizes. CRIU records no size for a write-only O_APPEND file (a log: it skips
the check on restore); its offset is the end of the file as of its last write, so that is its size at the dump as
far as this process knows, and the restored process appends from there again."""

from __future__ import annotations

from pathlib import Path

from .criuimage import IMG_COMMON_MAGIC, WIRE_LEN, WIRE_VARINT, archive_member, entries, fields

FILES_MAGIC = 0x56303138
MAX_OPEN_FILES = 10_000
_MAX_FILES_IMG_BYTES = 64 << 20
# criu images/fdinfo.proto: file_entry.type = 1 (fd_types REG = 1), file_entry.reg = 3;
# images/regfile.proto: reg_file_entry.flags = 2, .pos = 3, .name = 6, .size = 8.
_FILE_TYPE, _FILE_REG, _FD_TYPE_REG = 1, 3, 1
_REG_FLAGS, _REG_POS, _REG_NAME, _REG_SIZE = 2, 3, 6, 8
_O_APPEND = 0o2000


def parse_files_img(data: bytes, limit: int = MAX_OPEN_FILES) -> list[dict[str, str | int]]:
    """[{"path", "size"}] of each regular file with a recorded size (or an append offset), first occurrence of a
    path, at most `limit`."""
    found: dict[str, int] = {}
    for entry in entries(data, (IMG_COMMON_MAGIC, FILES_MAGIC), "files.img"):
        top = {number: value for number, _, value in fields(entry)}
        reg = top.get(_FILE_REG)
        if top.get(_FILE_TYPE) != _FD_TYPE_REG or not isinstance(reg, bytes):
            continue
        numbers = {number: value for number, wire, value in fields(reg) if wire == WIRE_VARINT}
        names = [v for number, wire, v in fields(reg) if number == _REG_NAME and wire == WIRE_LEN]
        name = names[0].decode("utf-8", "replace") if names and isinstance(names[0], bytes) else None
        size, pos = numbers.get(_REG_SIZE), numbers.get(_REG_POS, 0)
        if size is None and numbers.get(_REG_FLAGS, 0) & _O_APPEND and pos > 0:
            size = pos  # an append-only descriptor that has written: its offset is where the file ended
        if name is not None and size is not None and name not in found:
            found[name] = size
            if len(found) >= limit:
                break
    return [{"path": path, "size": size} for path, size in found.items()]


def read_open_files(archive: Path) -> list[dict[str, str | int]]:
    return parse_files_img(archive_member(archive, "checkpoint/files.img", _MAX_FILES_IMG_BYTES))
