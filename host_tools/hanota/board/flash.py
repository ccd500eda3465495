"""Writing MicroPython to a real board with esptool: the only module that runs esptool and
espefuse.

Everything is checked before the first byte is written: the serial port exists and is
free, the chip has no flash encryption (espefuse), the firmware file is a merged image
(bootloader + partition table + app) for this board's chip, and with its partition table
the board is laid out as board.json says (ptable.py, including MicroPython's run-time
`vfs`). A wrong file is refused, never half written. The ESP image rules come from
firmware/ports/esp32_image.py (one codec, both sides). It does not deploy or provision.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

from ..output import CommandError
from ..paths import BUILD, firmware_module, venv_bin
from . import ptable

DEFAULT_BAUD = 460800
# The eFuse whose odd bit count means flash encryption is on (espefuse 5.6.0 efuse_defs:
# esp32 FLASH_CRYPT_CNT uint:7, esp32s3 SPI_BOOT_CRYPT_CNT uint:3).
CRYPT_CNT = {"esp32": "FLASH_CRYPT_CNT", "esp32s3": "SPI_BOOT_CRYPT_CNT"}


def esp_image() -> ModuleType:
    """firmware/ports/esp32_image.py, the one copy of the ESP image rules."""
    return firmware_module("ports/esp32_image.py")


def esptool_cmd(board: dict[str, Any], port: str, firmware: Path, baud: int) -> list[str]:
    """esptool --chip C --port P --baud B write-flash --erase-all OFFSET FILE."""
    offset = board["micropython"]["offset"]
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
    offset = board["micropython"]["offset"]
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
            f"{board['micropython']['firmware']}-*-v{board['micropython']['version']}.bin"
        )
    try:
        table = ptable.parse(data, ptable.TABLE_OFFSET - offset)
    except CommandError as exc:
        raise CommandError(f"{what}: {exc}") from exc
    if table is None:
        raise CommandError(
            f"{what}: no partition table at flash {ptable.TABLE_OFFSET:#x}; not a merged firmware image"
        )
    ptable.compare(board, table, what)
    app = check_app(board, data, offset, what)
    vfs = ptable.runtime_vfs(table, board["flash_size"])
    return {"chip": chip, "offset": offset, "size": len(data), "partitions": len(table),
            "runtime_vfs": list(vfs) if vfs else None, **app}  # fmt: skip


def check_app(board: dict[str, Any], data: bytes, offset: int, what: str) -> dict[str, Any]:
    """The app in ota_0 must pass the port's full app check (chip, app descriptor, segments,
    appended SHA-256), as the bootloader would load it."""
    ei = esp_image()
    ota0 = next(p for p in board["partitions"] if p["name"] == "ota_0")
    body = data[ota0["offset"] - offset :]

    def read(off: int, buf: Any) -> None:
        buf[:] = body[off : off + len(buf)].ljust(len(buf), b"\xff")

    try:
        _, _, version, project = ei.check_app(
            read, min(len(body), ota0["size"]), board["chip"], ota0["size"]
        )
    except ei.EspImageError as exc:
        raise CommandError(f"{what}: the app at {ota0['offset']:#x} is refused: {exc}") from exc
    return {"app_version": version, "app_project": project}


def espefuse_cmd(board: dict[str, Any], port: str) -> list[str]:
    """espefuse --chip C --port P --after hard-reset summary CRYPT_CNT --format json --file F:
    reads (never burns) the flash-encryption counter, then restarts the chip."""
    return [
        venv_bin("espefuse"), "--chip", board["chip"], "--port", port, "--after", "hard-reset",
        "summary", CRYPT_CNT[board["chip"]], "--format", "json", "--file", str(efuse_file(port)),
    ]  # fmt: skip


def efuse_file(port: str) -> Path:
    """Where espefuse writes the summary of the board on `port` (kept as a record)."""
    return BUILD / "efuse" / (Path(port).name + ".json")


def encryption_count(board: dict[str, Any], summary: dict[str, Any]) -> int:
    """Bits set in the board's flash-encryption counter, from espefuse's JSON summary
    (`{NAME: {"raw_value": "0x..", "readable": bool, ...}}`, espefuse base_operations.summary)."""
    name = CRYPT_CNT[board["chip"]]
    field = summary.get(name)
    if not isinstance(field, dict) or not field.get("readable", False):
        raise CommandError(
            f"espefuse did not report a readable {name}: cannot tell whether flash encryption is on"
        )
    try:
        return bin(int(str(field["raw_value"]), 16)).count("1")
    except (KeyError, ValueError) as exc:
        raise CommandError(f"espefuse reported {name} as {field.get('raw_value')!r}") from exc


def refuse_encryption(board: dict[str, Any], summary: dict[str, Any]) -> None:
    """An odd number of bits in the counter is flash encryption on: refused. The port ends an
    image with an unaligned write and checks that flash is erased by reading 0xFF; with
    encryption, writes must be 16-byte aligned (esp_flash_write_encrypted) and erased flash
    reads back decrypted, not 0xFF (ESP-IDF v5.5.1 spi_flash/esp_flash_api.c)."""
    bits = encryption_count(board, summary)
    if bits % 2:
        name = CRYPT_CNT[board["chip"]]
        raise CommandError(
            f"board {board['name']!r} has flash encryption on ({name} has {bits} bits set, an odd "
            "count): the agent does not support it (encrypted writes must be 16-byte aligned and "
            "erased flash no longer reads 0xFF); nothing was written"
        )


def check_encryption(board: dict[str, Any], port: str) -> int:
    """Read the eFuses with espefuse and refuse an encrypted board. Returns the bit count."""
    out = efuse_file(port)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    res = subprocess.run(espefuse_cmd(board, port), capture_output=True, text=True)
    if res.returncode != 0 or not out.is_file():
        tail = (res.stderr or res.stdout).strip().splitlines()[-1:] or ["no output"]
        raise CommandError(f"espefuse could not read the eFuses on {port}: {tail[0]}")
    try:
        summary = json.loads(out.read_text())
    except ValueError as exc:
        raise CommandError(f"espefuse wrote no JSON summary to {out}: {exc}") from exc
    refuse_encryption(board, summary)
    return encryption_count(board, summary)
