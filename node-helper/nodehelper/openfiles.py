"""The regular files the dumped processes had open, with the size CRIU recorded, from checkpoint/files.img.

CRIU restores an open file only if it still has the size it had at the dump, so the operator truncates volume files
that grew after the dump back to these sizes."""

from __future__ import annotations

from pathlib import Path

from .criuimage import IMG_COMMON_MAGIC, WIRE_LEN, WIRE_VARINT, archive_member, entries, fields

FILES_MAGIC = 0x56303138
MAX_OPEN_FILES = 10_000
_MAX_FILES_IMG_BYTES = 64 << 20
# criu images/fdinfo.proto: file_entry.type = 1 (fd_types REG = 1), file_entry.reg = 3;
# images/regfile.proto: reg_file_entry.name = 6, reg_file_entry.size = 8.
_FILE_TYPE, _FILE_REG, _FD_TYPE_REG = 1, 3, 1
_REG_NAME, _REG_SIZE = 6, 8


def parse_files_img(data: bytes, limit: int = MAX_OPEN_FILES) -> list[dict[str, str | int]]:
    """[{"path", "size"}] of each regular file with a recorded size, first occurrence of a path, at most `limit`."""
    found: dict[str, int] = {}
    for entry in entries(data, (IMG_COMMON_MAGIC, FILES_MAGIC), "files.img"):
        top = {number: value for number, _, value in fields(entry)}
        reg = top.get(_FILE_REG)
        if top.get(_FILE_TYPE) != _FD_TYPE_REG or not isinstance(reg, bytes):
            continue
        name = size = None
        for number, wire, value in fields(reg):
            if number == _REG_NAME and wire == WIRE_LEN and isinstance(value, bytes):
                name = value.decode("utf-8", "replace")
            elif number == _REG_SIZE and wire == WIRE_VARINT and isinstance(value, int):
                size = value
        if name is not None and size is not None and name not in found:
            found[name] = size
            if len(found) >= limit:
                break
    return [{"path": path, "size": size} for path, size in found.items()]


def read_open_files(archive: Path) -> list[dict[str, str | int]]:
    return parse_files_img(archive_member(archive, "checkpoint/files.img", _MAX_FILES_IMG_BYTES))
