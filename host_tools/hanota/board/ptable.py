"""ESP-IDF partition tables as a board sees them: the binary table read from a firmware file,
the `vfs` partition MicroPython v1.26+ registers at run time, and the match with board.json.

Reads and compares only; it writes no flash (flash.py runs esptool) and encodes no table
(the sim's flash file does: hanota.sim.flash.partition_table).
"""

from __future__ import annotations

import hashlib
import struct
from typing import Any

from ..output import CommandError

TABLE_OFFSET = 0x8000  # ESP-IDF default CONFIG_PARTITION_TABLE_OFFSET
TABLE_MAX = 0xC00  # ESP_PARTITION_TABLE_MAX_LEN
_ENTRY = struct.Struct("<2sBBII16sI")
_MAGIC = b"\xaa\x50"
_MD5_MAGIC = b"\xeb\xeb"
TYPES = {"app": 0x00, "data": 0x01}
SUBTYPES = {
    "app": {"factory": 0x00, "ota_0": 0x10, "ota_1": 0x11, "test": 0x20},
    "data": {"ota": 0x00, "phy": 0x01, "nvs": 0x02, "coredump": 0x03, "nvs_keys": 0x04,
             "efuse": 0x05, "undefined": 0x06, "fat": 0x81, "spiffs": 0x82, "littlefs": 0x83},
}  # fmt: skip
FS_LABELS = ("vfs", "ffat")  # the data partitions MicroPython mounts (modules/flashbdev.py)


def label_of(part: dict[str, Any]) -> str:
    """A board.json partition's label on the board (`label`, else its name)."""
    return part.get("label", part["name"])


def in_table(part: dict[str, Any]) -> bool:
    """False for a partition the board registers at run time (`"table": false`)."""
    return part.get("table", True) is not False


def parse(data: bytes, at: int) -> list[dict[str, Any]] | None:
    """The table at file offset `at`, checked as ESP-IDF's esp_partition_table_verify does
    (bootloader_support/src/flash_partitions.c): entries, an optional MD5 entry that must
    match, then an 0xFF terminator. None when no table starts there; CommandError if broken."""
    if at < 0 or at + _ENTRY.size > len(data) or data[at : at + 2] != _MAGIC:
        return None
    out: list[dict[str, Any]] = []
    end = min(at + TABLE_MAX, len(data))
    pos = at
    while pos + _ENTRY.size <= end and data[pos : pos + 2] == _MAGIC:
        _, typ, sub, off, size, label, flags = _ENTRY.unpack_from(data, pos)
        name = label.split(b"\0")[0].decode(errors="replace")
        out.append({"label": name, "type": typ, "subtype": sub, "offset": off, "size": size,
                    "flags": flags})  # fmt: skip
        pos += _ENTRY.size
    if data[pos : pos + 2] == _MD5_MAGIC:
        if data[pos + 16 : pos + 32] != hashlib.md5(data[at:pos]).digest():
            raise CommandError(
                f"the partition table at flash {TABLE_OFFSET:#x} has a wrong MD5 entry: "
                "the bootloader would refuse it (a corrupt file)"
            )
        pos += _ENTRY.size
    if data[pos : pos + 4] != b"\xff\xff\xff\xff":
        raise CommandError(
            f"the partition table at flash {TABLE_OFFSET:#x} has no end marker after "
            f"{len(out)} entries: the bootloader would refuse it"
        )
    return out


def runtime_vfs(rows: list[dict[str, Any]], flash_size: int) -> tuple[int, int] | None:
    """(offset, size) of the `vfs` partition MicroPython v1.26+ registers at boot
    (ports/esp32/main.c, boardctrl_startup): only when no data partition labelled "vfs" or
    "ffat" is in the table, from the end of the last partition to the end of the physical
    flash. `rows` are table entries (parse() or board_rows())."""
    for r in rows:
        if r["label"] in FS_LABELS and r["type"] == TYPES["data"]:
            return None
    start = max((r["offset"] + r["size"] for r in rows), default=0)
    if start == 0 or flash_size <= start:
        return None
    return start, flash_size - start


def board_rows(board: dict[str, Any]) -> list[dict[str, Any]]:
    """board.json's table partitions as table rows (label, type code, subtype code)."""
    rows = []
    for p in board["partitions"]:
        if in_table(p):
            rows.append({"label": label_of(p), "type": TYPES.get(p["type"], -1),
                         "subtype": SUBTYPES.get(p["type"], {}).get(p["subtype"], -1),
                         "offset": p["offset"], "size": p["size"]})  # fmt: skip
    return rows


def _span(offset: int, size: int) -> str:
    return f"{offset:#x}+{size:#x}"


def compare(board: dict[str, Any], table: list[dict[str, Any]], what: str) -> None:
    """Refuse a table with which the board would not be laid out as board.json says: the
    runtime `vfs` first (where MicroPython would put it), then the table entry for entry."""
    name, size = board["name"], board["flash_size"]
    csv = f"boards/{name}/partitions.csv"
    for e in table:
        if e["offset"] + e["size"] > size:
            raise CommandError(
                f"{what}: partition {e['label']!r} ({_span(e['offset'], e['size'])}) ends past "
                f"the {size // 0x100000} MB flash of board {name!r}: the bootloader refuses the table"
            )
    for part in board["partitions"]:
        if not in_table(part):
            _compare_runtime(board, part, table, what)
    want = board_rows(board)
    got = [{k: e[k] for k in ("label", "type", "subtype", "offset", "size")} for e in table]
    if got == want:
        return
    have = {e["label"]: e for e in got}
    for row in want:
        e = have.get(row["label"])
        if e is None or e != row:
            found = _span(e["offset"], e["size"]) if e else "missing"
            raise CommandError(
                f"{what} was built with another partition table: {row['label']!r} is {found}, "
                f"board {name!r} needs {_span(row['offset'], row['size'])} "
                f"(type {row['type']:#x}, subtype {row['subtype']:#x}; {csv})"
            )
    extra = [e["label"] for e in got if e["label"] not in {r["label"] for r in want}]
    raise CommandError(
        f"{what} was built with another partition table: it also has {extra} "
        f"(board {name!r}: {[r['label'] for r in want]}, {csv})"
    )


def _compare_runtime(
    board: dict[str, Any], part: dict[str, Any], table: list[dict[str, Any]], what: str
) -> None:
    label, name = label_of(part), board["name"]
    listed = [e for e in table if e["label"] in FS_LABELS and e["type"] == TYPES["data"]]
    if listed:
        e = listed[0]
        raise CommandError(
            f"{what} has a {e['label']!r} partition in its table ({_span(e['offset'], e['size'])}): "
            f"board {name!r} expects MicroPython {board['micropython'].get('version')}'s release "
            f"table, which has none ({label!r} is made at run time); use "
            f"{board['micropython'].get('firmware')} v{board['micropython'].get('version')}"
        )
    got = runtime_vfs(table, board["flash_size"])
    if got != (part["offset"], part["size"]):
        at = _span(*got) if got else "nowhere (no space after the last partition)"
        raise CommandError(
            f"{what}: with its partition table MicroPython would make {label!r} at {at} "
            f"(end of the last partition to the end of the {board['flash_size'] // 0x100000} MB "
            f"flash); board {name!r} keeps its {part['name']!r} partition at "
            f"{_span(part['offset'], part['size'])}"
        )
