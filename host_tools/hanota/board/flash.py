"""Writing MicroPython to a real board with esptool: the only module that runs esptool.

Everything is checked before the first byte is written: the serial port exists and is
free, the firmware file is a merged image (bootloader + partition table + app) for this
board's chip, and its partition table is the board's. A wrong file is refused, never half
written. The ESP image rules come from firmware/ports/esp32_image.py (one codec, both sides).
"""

from __future__ import annotations

import importlib.util
import os
import struct
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from ..output import CommandError
from ..paths import FIRMWARE, venv_bin

DEFAULT_BAUD = 460800
_TABLE_FLASH_OFFSET = 0x8000  # ESP-IDF default CONFIG_PARTITION_TABLE_OFFSET
_ENTRY = struct.Struct("<2sBBII16sI")
_APP_SUBTYPES = {"factory": 0x00, "ota_0": 0x10, "ota_1": 0x11}
_DATA_SUBTYPES = {
    "ota": 0x00,
    "phy": 0x01,
    "nvs": 0x02,
    "fat": 0x81,
    "spiffs": 0x82,
    "littlefs": 0x83,
}


def esp_image() -> ModuleType:
    """firmware/ports/esp32_image.py, loaded by path (firmware/ is not a host package)."""
    name = "hanota_esp32_image"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, FIRMWARE / "ports" / "esp32_image.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def esptool_cmd(board: dict[str, Any], port: str, firmware: Path, baud: int) -> list[str]:
    """esptool --chip C --port P --baud B write-flash --erase-all OFFSET FILE."""
    offset = board["micropython"].get("offset", 0x1000 if board["chip"] == "esp32" else 0)
    return [
        venv_bin("esptool"), "--chip", board["chip"], "--port", port,
        "--baud", str(baud), "write-flash", "--erase-all", f"{offset:#x}", str(firmware),
    ]  # fmt: skip


def available_ports() -> list[str]:
    from serial.tools import list_ports

    return sorted(p.device for p in list_ports.comports())


def check_port(port: str) -> None:
    """The port must exist; say which ones do when it does not."""
    if os.path.exists(port):
        return
    ports = available_ports()
    listed = ", ".join(ports) if ports else "none found (is the board plugged in?)"
    raise CommandError(f"serial port {port!r} does not exist; available ports: {listed}")


def check_firmware(board: dict[str, Any], path: Path) -> dict[str, Any]:
    """Refuse a file that is not a merged MicroPython image for this board. Returns facts."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CommandError(f"firmware {path}: {exc.strerror}") from exc
    ei = esp_image()
    chip = board["chip"]
    offset = board["micropython"].get("offset", 0)
    what = f"firmware {path.name}"
    if offset + len(data) > board["flash_size"]:
        raise CommandError(
            f"{what}: {len(data)} bytes at {offset:#x} do not fit in {board['flash_size']:#x}"
        )
    if len(data) < 0x30 or data[0] != ei.IMAGE_MAGIC:
        raise CommandError(f"{what} is not an ESP firmware image (first byte is not 0xE9)")
    got = struct.unpack_from("<H", data, 12)[0]
    if got != ei.CHIP_IDS[chip]:
        raise CommandError(
            f"{what} is for {ei.chip_name(got)}, board {board['name']!r} is {chip}: "
            "use the MicroPython build for this board's chip"
        )
    if struct.unpack_from("<I", data, 0x20)[0] == ei.APP_DESC_MAGIC:
        raise CommandError(
            f"{what} is an app-only image (an OTA payload): flash takes the merged firmware "
            f"(bootloader + partition table + app) written at {offset:#x}, e.g. "
            f"{board['micropython'].get('firmware')}-*.bin"
        )
    table = parse_table(data, _TABLE_FLASH_OFFSET - offset)
    if table is None:
        raise CommandError(
            f"{what}: no partition table at flash {_TABLE_FLASH_OFFSET:#x}; not a merged firmware image"
        )
    compare_table(board, table, what)
    app = check_app(board, data, table, offset, what)
    return {"chip": chip, "offset": offset, "size": len(data), "partitions": len(table), **app}


def parse_table(data: bytes, at: int) -> list[dict[str, Any]] | None:
    if at < 0 or at + _ENTRY.size > len(data) or data[at : at + 2] != b"\xaa\x50":
        return None
    out = []
    for pos in range(at, min(at + 0xC00, len(data) - _ENTRY.size + 1), _ENTRY.size):
        magic, typ, sub, off, size, label, _ = _ENTRY.unpack_from(data, pos)
        if magic != b"\xaa\x50":
            break
        out.append({"label": label.rstrip(b"\0").decode(errors="replace"), "type": typ,
                    "subtype": sub, "offset": off, "size": size})  # fmt: skip
    return out


def compare_table(board: dict[str, Any], table: list[dict[str, Any]], what: str) -> None:
    by_label = {e["label"]: e for e in table}
    for part in board["partitions"]:
        label = part.get("label", part["name"])
        entry = by_label.get(label)
        want = (part["offset"], part["size"])
        if entry is None or (entry["offset"], entry["size"]) != want:
            have = f"{entry['offset']:#x}+{entry['size']:#x}" if entry else "missing"
            raise CommandError(
                f"{what} was built with another partition table: {label!r} is {have}, board "
                f"{board['name']!r} needs {want[0]:#x}+{want[1]:#x} (boards/{board['name']}/partitions.csv)"
            )
        subtypes = _APP_SUBTYPES if part["type"] == "app" else _DATA_SUBTYPES
        if subtypes.get(part["subtype"], entry["subtype"]) != entry["subtype"]:
            raise CommandError(
                f"{what}: partition {label!r} has subtype {entry['subtype']:#x}, board says {part['subtype']!r}"
            )


def check_app(
    board: dict[str, Any], data: bytes, table: list, offset: int, what: str
) -> dict[str, Any]:
    """The app in the first slot must be an app image for this chip that fits it."""
    ei = esp_image()
    ota0 = next(p for p in board["partitions"] if p["name"] == "ota_0")
    body = data[ota0["offset"] - offset :]
    length = min(len(body), ota0["size"])

    def read(off: int, buf: Any) -> None:
        buf[:] = body[off : off + len(buf)].ljust(len(buf), b"\xff")

    try:
        _, _, version, project = ei.check_head(
            body[: ei.HEAD_LEN], board["chip"], length, ota0["size"]
        )
        ei.image_end(read, body[: ei.HEAD_LEN], length)
    except ei.EspImageError as exc:
        raise CommandError(f"{what}: the app at {ota0['offset']:#x} is refused: {exc}") from exc
    return {"app_version": version, "app_project": project}
