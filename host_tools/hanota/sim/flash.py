"""The sim board's flash file: a board's partition table laid out in DIR/flash.bin.

Host-side access by partition name, an ESP-IDF partition table binary at 0x8000 (so a
corrupt or foreign file is caught), and otadata sector writes for the bootloader.
"""

from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path
from typing import Any

from ..output import CommandError
from . import otadata

TABLE_OFFSET = 0x8000
TABLE_MAX = 0xC00
_ENTRY = struct.Struct("<2sBBII16sI")
_MAGIC = b"\xaa\x50"
_MD5_MAGIC = b"\xeb\xeb"
_TYPES = {"app": 0x00, "data": 0x01}
_SUBTYPES = {
    "factory": 0x00, "test": 0x20, "ota": 0x00, "phy": 0x01, "nvs": 0x02, "coredump": 0x03,
    "nvs_keys": 0x04, "efuse": 0x05, "undefined": 0x06, "fat": 0x81, "spiffs": 0x82,
    "littlefs": 0x83,
}  # fmt: skip


class FlashError(CommandError):
    """The flash file is missing, of the wrong size or not laid out for its board."""


def subtype_code(kind: str, subtype: str) -> int:
    if kind == "app" and subtype.startswith("ota_"):
        return 0x10 + int(subtype[4:])
    return _SUBTYPES.get(subtype, 0x06 if kind == "data" else 0x00)


def partition_table(board: dict[str, Any]) -> bytes:
    """ESP-IDF binary partition table (entries + MD5 entry), 0xFF padded to 0xC00, laid out
    as the real board's: each partition under its on-board label, and a partition the board
    registers at run time ("table": false, MicroPython's vfs) left out, as it is on flash."""
    rows = b"".join(
        _ENTRY.pack(
            _MAGIC,
            _TYPES[p["type"]],
            subtype_code(p["type"], p["subtype"]),
            p["offset"],
            p["size"],
            p.get("label", p["name"]).encode()[:16],
            0,
        )
        for p in board["partitions"]
        if p.get("table", True) is not False
    )
    rows += _MD5_MAGIC + b"\xff" * 14 + hashlib.md5(rows).digest()
    return rows + b"\xff" * (TABLE_MAX - len(rows))


class FlashFile:
    """DIR/flash.bin for a board definition."""

    def __init__(self, path: str | Path, board: dict[str, Any]):
        self.path = Path(path)
        self.board = board
        self.parts = {p["name"]: (p["offset"], p["size"]) for p in board["partitions"]}

    @classmethod
    def create(cls, path: str | Path, board: dict[str, Any]) -> FlashFile:
        """A fully erased flash of flash_size bytes with the partition table written."""
        flash = cls(path, board)
        tmp = flash.path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            chunk = b"\xff" * 0x10000
            for _ in range(board["flash_size"] // len(chunk)):
                f.write(chunk)
            f.seek(TABLE_OFFSET)
            f.write(partition_table(board))
        os.replace(tmp, flash.path)
        return flash

    def check(self) -> None:
        """Raise FlashError unless the file has the board's size and partition table."""
        name = self.board["name"]
        if not self.path.is_file():
            raise FlashError(
                f"{self.path}: no flash file; run 'hanota sim create DIR --board {name}'"
            )
        size = self.path.stat().st_size
        if size != self.board["flash_size"]:
            raise FlashError(
                f"{self.path}: corrupt flash file: {size} bytes, board {name} has "
                f"{self.board['flash_size']}; recreate it with 'hanota sim create'"
            )
        if self.read(TABLE_OFFSET, TABLE_MAX) != partition_table(self.board):
            raise FlashError(
                f"{self.path}: corrupt flash file: the partition table at 0x8000 does not "
                f"match board {name}; recreate it with 'hanota sim create'"
            )

    def part(self, name: str) -> tuple[int, int]:
        return self.parts[name]

    def read(self, offset: int, n: int) -> bytes:
        with open(self.path, "rb") as f:
            f.seek(offset)
            return f.read(n)

    def write(self, offset: int, data: bytes) -> None:
        """Program bytes as the host (factory flashing, bootloader): seek, write, flush."""
        with open(self.path, "r+b") as f:
            f.seek(offset)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    def read_partition(self, name: str, n: int | None = None) -> bytes:
        offset, size = self.part(name)
        return self.read(offset, size if n is None else min(n, size))

    def erase_partition(self, name: str) -> None:
        offset, size = self.part(name)
        self.write(offset, b"\xff" * size)

    def otadata(self) -> tuple[otadata.Entry, otadata.Entry]:
        return otadata.parse(self.read_partition("otadata"))

    def write_otadata(self, sector: int, entry: otadata.Entry) -> None:
        """Erase one otadata sector and write `entry` (ESP-IDF write_otadata)."""
        offset = self.part("otadata")[0] + sector * otadata.SECTOR
        self.write(offset, otadata.sector_image(entry))
