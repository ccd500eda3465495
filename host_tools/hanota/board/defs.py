"""Board definitions: load and validate `boards/<name>/board.json` (data, not code).

Only loading and checking lives here; flashing, provisioning and deploy are elsewhere.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..output import CommandError
from ..paths import BOARDS
from . import ptable

KINDS = ("esp32", "sim")
PORTS = ("esp32", "unix")  # firmware/ports/<port>.py: the port make_port() builds
CHIPS = ("esp32", "esp32s3")
REQUIRED_PARTITIONS = ("ota_0", "ota_1", "otadata", "agent")
SECTOR = 0x1000
APP_ALIGN = 0x10000  # ESP-IDF places app partitions on 64 KB boundaries
OTADATA_SIZE = 0x2000
FIRMWARE_OFFSET = {"esp32": 0x1000, "esp32s3": 0x0}  # where a merged release .bin is written
RUNTIME_VFS_SINCE = (1, 26, 0)  # ports/esp32/main.c registers "vfs" at boot from v1.26

_INT_KEYS = ("flash_size", "manufacturer_code", "image_type", "hw_version", "watchdog_ms")
_STR_KEYS = ("name", "description", "kind", "port", "chip", "console")


class BoardError(CommandError):
    """A board name that does not exist or a board.json that breaks the schema."""


def names() -> list[str]:
    """Names of the boards in the checkout's boards/ folder, sorted."""
    if not BOARDS.is_dir():
        return []
    return sorted(p.parent.name for p in BOARDS.glob("*/board.json"))


def path_of(name: str) -> Path:
    """The board.json for a board name, or a path to a board.json (or its folder)."""
    given = Path(name)
    if given.suffix == ".json" and given.is_file():
        return given
    if (given / "board.json").is_file() and ("/" in name or name.startswith(".")):
        return given / "board.json"
    found = BOARDS / name / "board.json"
    if not found.is_file():
        known = ", ".join(names()) or "none"
        raise BoardError(f"unknown board {name!r}; known boards: {known}")
    return found


def load(name: str) -> dict[str, Any]:
    """Load and validate one board definition; raises BoardError with what is wrong."""
    path = path_of(name)
    try:
        board = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BoardError(f"{path}: cannot read board definition: {exc}") from exc
    validate(board, str(path))
    return board


def partition(board: dict[str, Any], name: str) -> dict[str, Any]:
    """The partition entry called `name`."""
    for part in board["partitions"]:
        if part["name"] == name:
            return part
    raise BoardError(f"board {board.get('name')!r} has no partition {name!r}")


def validate(board: Any, where: str = "board.json") -> None:
    """Check the schema of docs/architecture.md; raise BoardError naming the field."""
    if not isinstance(board, dict):
        raise BoardError(f"{where}: a board definition is a JSON object")
    for key in _STR_KEYS:
        _need(board, key, str, where)
    for key in _INT_KEYS:
        _need(board, key, int, where)
    _need(board, "partitions", list, where)
    _need(board, "han_uart", dict, where)
    _need(board, "micropython", dict, where)
    if board["kind"] not in KINDS:
        raise BoardError(f"{where}: kind must be one of {KINDS}, not {board['kind']!r}")
    if board["port"] not in PORTS:
        raise BoardError(f"{where}: port must be one of {PORTS}, not {board['port']!r}")
    if board["chip"] not in CHIPS:
        raise BoardError(f"{where}: chip must be one of {CHIPS}, not {board['chip']!r}")
    if board["console"] not in ("on", "off"):
        raise BoardError(f"{where}: console must be 'on' or 'off'")
    if board["kind"] == "sim":
        _need(board, "heap", str, where)
    else:
        _check_release(board, where)
    _check_partitions(board, where)
    _check_runtime(board, where)


def _check_release(board: dict[str, Any], where: str) -> None:
    """A real board names the MicroPython build it expects: firmware, version X.Y.Z, the
    partition CSV it was built with, and the flash offset of its merged .bin."""
    mp = board["micropython"]
    for key, kind in (("firmware", str), ("version", str), ("partitions_csv", str),
                      ("offset", int)):  # fmt: skip
        if not isinstance(mp.get(key), kind) or isinstance(mp.get(key), bool):
            raise BoardError(f"{where}: micropython.{key} must be a {kind.__name__}")
    if not re.fullmatch(r"\d+\.\d+\.\d+", mp["version"]):
        raise BoardError(f"{where}: micropython.version must be X.Y.Z, not {mp['version']!r}")
    if mp["offset"] != FIRMWARE_OFFSET[board["chip"]]:
        raise BoardError(
            f"{where}: micropython.offset on {board['chip']} is {FIRMWARE_OFFSET[board['chip']]:#x}"
        )


def _version(board: dict[str, Any]) -> tuple[int, ...]:
    found = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", str(board["micropython"].get("version", "")))
    return tuple(int(g or 0) for g in found.groups()) if found else (0, 0, 0)


def _check_runtime(board: dict[str, Any], where: str) -> None:
    """A partition with "table": false is the `vfs` MicroPython registers at boot: it must be
    exactly where main.c puts it for the board's table rows and flash size."""
    runtime = [p for p in board["partitions"] if not ptable.in_table(p)]
    for p in board["partitions"]:
        if not isinstance(p.get("table", True), bool):
            raise BoardError(f"{where}: partition {p['name']!r}: 'table' must be true or false")
    if not runtime:
        return
    part = runtime[0]
    name = part["name"]
    if (
        len(runtime) > 1
        or ptable.label_of(part) != "vfs"
        or (part["type"], part["subtype"])
        != (
            "data",
            "fat",
        )
    ):
        raise BoardError(
            f"{where}: only MicroPython's run-time partition (label 'vfs', data/fat) can have "
            f'"table": false; partition {name!r} cannot'
        )
    if _version(board) < RUNTIME_VFS_SINCE:
        raise BoardError(f"{where}: MicroPython before 1.26 does not register 'vfs' at run time")
    want = ptable.runtime_vfs(ptable.board_rows(board), board["flash_size"])
    if want != (part["offset"], part["size"]):
        at = f"{want[0]:#x}+{want[1]:#x}" if want else "nowhere"
        raise BoardError(
            f"{where}: partition {name!r} is registered at run time from the end of the last "
            f"table partition to the end of flash: {at}, not {part['offset']:#x}+{part['size']:#x}"
        )


def _need(board: dict[str, Any], key: str, kind: type, where: str) -> None:
    value = board.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise BoardError(f"{where}: field {key!r} must be a {kind.__name__}, got {value!r}")


def _check_partitions(board: dict[str, Any], where: str) -> None:
    seen: dict[str, dict[str, Any]] = {}
    for part in board["partitions"]:
        _check_partition(part, board["flash_size"], where)
        if part["name"] in seen:
            raise BoardError(f"{where}: partition {part['name']!r} appears twice")
        seen[part["name"]] = part
    for name in REQUIRED_PARTITIONS:
        if name not in seen:
            raise BoardError(f"{where}: partition {name!r} is missing (need {REQUIRED_PARTITIONS})")
    if seen["otadata"]["size"] != OTADATA_SIZE:
        raise BoardError(f"{where}: otadata must be 0x2000 bytes (two 4 KB sectors)")
    ordered = sorted(seen.values(), key=lambda p: p["offset"])
    for a, b in zip(ordered, ordered[1:], strict=False):
        if a["offset"] + a["size"] > b["offset"]:
            raise BoardError(f"{where}: partitions {a['name']!r} and {b['name']!r} overlap")


def _check_partition(part: Any, flash_size: int, where: str) -> None:
    if not isinstance(part, dict):
        raise BoardError(f"{where}: each partition is an object")
    name = part.get("name")
    for key, kind in (
        ("name", str),
        ("type", str),
        ("subtype", str),
        ("offset", int),
        ("size", int),
    ):
        if not isinstance(part.get(key), kind):
            raise BoardError(f"{where}: partition {name!r}: {key!r} must be a {kind.__name__}")
    align = APP_ALIGN if part["type"] == "app" else SECTOR
    if part["offset"] % align or part["size"] % SECTOR or part["size"] <= 0:
        raise BoardError(f"{where}: partition {name!r} is not aligned (offset to {align:#x})")
    if part["offset"] + part["size"] > flash_size:
        raise BoardError(f"{where}: partition {name!r} ends past flash_size {flash_size:#x}")
