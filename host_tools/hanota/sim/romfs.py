"""MicroPython ROMFS images (the `vfs.VfsRom` format): build one from a file list, list one.

The sim board's app tree is a ROMFS image, mapped read-only into MicroPython's address
space at boot and mounted at /rom, as an ESP32 maps its romfs partition through the flash
cache: .mpy modules run in place, so their bytecode and constants cost no heap. The
writer is mpremote's (`mpremote romfs build` uses it); the reader is ours, for the
runner's fallback (a MicroPython binary that cannot map it) and for tests.

Layout: header d2 cd 31, then records (kind varuint, length varuint, payload); a
directory or file payload is a name (varuint length + bytes) then its records; file data
is a verbatim data record. Varuints are big-endian 7-bit groups, high bit = more.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from mpremote.romfs import VfsRomWriter

HEADER = VfsRomWriter.ROMFS_HEADER
_PADDING = VfsRomWriter.ROMFS_RECORD_KIND_PADDING
_VERBATIM = VfsRomWriter.ROMFS_RECORD_KIND_DATA_VERBATIM
_DIR = VfsRomWriter.ROMFS_RECORD_KIND_DIRECTORY
_FILE = VfsRomWriter.ROMFS_RECORD_KIND_FILE


class RomfsError(ValueError):
    """Not a ROMFS image, or one that is truncated or holds an unsafe path."""


def build(files: list[tuple[str, bytes]]) -> bytes:
    """A ROMFS image holding files ((posix path, data)), directories made as needed."""
    w = VfsRomWriter()
    stack: list[str] = []
    for path, data in sorted(files, key=lambda f: PurePosixPath(f[0]).parts):
        *dirs, name = _safe(path)
        while stack and stack != dirs[: len(stack)]:
            w.closedir()
            stack.pop()
        for d in dirs[len(stack) :]:
            w.opendir(d)
            stack.append(d)
        w.mkfile(name, data)
    for _ in stack:
        w.closedir()
    return w.finalise()


def read(image: bytes) -> list[tuple[str, bytes]]:
    """The files of an image as (posix path, data), in image order."""
    if not image.startswith(HEADER):
        raise RomfsError("not a ROMFS image (no d2 cd 31 header)")
    length, off = _uint(image, len(HEADER))
    if off + length > len(image):
        raise RomfsError("ROMFS image truncated")
    out: list[tuple[str, bytes]] = []
    _records(image, off, off + length, "", out)
    return out


def _records(img: bytes, off: int, end: int, prefix: str, out: list) -> None:
    while off < end:
        kind, off = _uint(img, off)
        length, off = _uint(img, off)
        if off + length > end:
            raise RomfsError("ROMFS record runs past its directory")
        if kind in (_DIR, _FILE):
            nlen, p = _uint(img, off)
            name = img[p : p + nlen].decode("ascii", "replace")
            path = prefix + name
            _safe(path)
            if kind == _DIR:
                _records(img, p + nlen, off + length, path + "/", out)
            else:
                out.append((path, _file_data(img, p + nlen, off + length)))
        off += length


def _file_data(img: bytes, off: int, end: int) -> bytes:
    while off < end:
        kind, off = _uint(img, off)
        length, off = _uint(img, off)
        if kind == _VERBATIM:
            return bytes(img[off : off + length])
        if kind != _PADDING:
            raise RomfsError(f"ROMFS file record of kind {kind} is not supported")
        off += length
    raise RomfsError("ROMFS file without data")


def _uint(img: bytes, off: int) -> tuple[int, int]:
    value = 0
    while True:
        if off >= len(img):
            raise RomfsError("ROMFS image truncated")
        b = img[off]
        off += 1
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            return value, off


def _safe(path: str) -> list[str]:
    parts = path.split("/")
    if path.startswith("/") or not path or any(p in ("", ".", "..") for p in parts):
        raise RomfsError(f"unsafe path {path!r} in an app tree")
    return parts
