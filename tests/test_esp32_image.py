"""ESP app image checks (firmware/ports/esp32_image.py), CPython and MicroPython.

Images are synthetic but laid out as ESP-IDF lays them out (esptool's image-info accepts
them, checked below), so the port refuses what the bootloader would choke on, and the
classic brick (a merged firmware.bin written into an OTA slot) in particular.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from hanota.paths import FIRMWARE
from mpy import check_mpy

sys.path.insert(0, str(FIRMWARE))
from ports import esp32_image as ei  # noqa: E402

SLOT = 0x180000
# chip id -> (first segment's DROM address, second segment's IRAM address): DROM mapped at the
# same offset within a 64 KB MMU page as its data (0x20 into the image), IRAM loaded
# (ESP-IDF components/soc/<chip>/include/soc/soc.h)
LOAD_ADDRS = {0: (0x3F400020, 0x40080000), 9: (0x3C000020, 0x40378000)}


def esp_image(
    chip_id: int = 0,
    body: int = 8192,
    app: bool = True,
    version: bytes = b"0x01020304",
    hash_appended: bool = True,
    checksum_xor: int = 0,
    max_rev: int = 399,
) -> bytes:
    """An ESP-IDF image: header, two segments (the first opens with esp_app_desc_t when
    `app`), XOR checksum padded to 16 (off by `checksum_xor`), appended SHA-256 (computed
    after, so a bad checksum still has a good hash); `max_rev`: max_chip_rev_full."""
    if app:
        desc = struct.pack("<IIII", ei.APP_DESC_MAGIC, 0, 0, 0)
        desc += version.ljust(32, b"\0") + b"hanota-test".ljust(32, b"\0")
        desc += b"12:00:00".ljust(16, b"\0") + b"Jan  1 2026".ljust(16, b"\0")
        desc += b"v5.4".ljust(32, b"\0") + bytes(32)
        desc = desc.ljust(256, b"\0")
    else:  # IDF 5 bootloader: esp_bootloader_desc_t opens with magic byte 0x50
        desc = bytes([0x50, 1, 0, 0]) + bytes(76)
    seg1 = desc + bytes((i * 7) & 0xFF for i in range(body))
    seg2 = bytes((i * 13) & 0xFF for i in range(1024))
    drom, iram = LOAD_ADDRS.get(chip_id, LOAD_ADDRS[0])
    head = struct.pack(
        "<BBBBIB3sHBHH4sB",
        ei.IMAGE_MAGIC, 2, 2, 0x20, iram, 0xEE, bytes(3), chip_id, 0, 0, max_rev, bytes(4),
        1 if hash_appended else 0,
    )  # fmt: skip
    out = bytearray(head)
    for load, data in ((drom, seg1), (iram, seg2)):
        out += struct.pack("<II", load, len(data)) + data
    checksum = 0xEF
    for b in seg1 + seg2:
        checksum ^= b
    out += bytes(15 - len(out) % 16) + bytes([checksum ^ checksum_xor])
    if hash_appended:
        out += hashlib.sha256(out).digest()
    return bytes(out)


def merged_image(chip_id: int = 0, table_at: int = 0x7000, app_at: int = 0xF000) -> bytes:
    """A merged firmware.bin as MicroPython ships it: bootloader first, partition table,
    app (ESP32: file offset 0 = flash 0x1000)."""
    out = bytearray(esp_image(chip_id, body=2048, app=False))
    out += b"\xff" * (table_at - len(out))
    out += b"\xaa\x50" + bytes(30) + b"\xff" * (app_at - table_at - 32)
    return bytes(out + esp_image(chip_id))


def reader(data: bytes):
    def read(off: int, buf) -> None:
        n = len(buf)
        buf[:] = data[off : off + n].ljust(n, b"\xff")

    return read


def check(data: bytes, chip: str = "esp32", slot: int = SLOT, length: int | None = None):
    return ei.check_app(reader(data), len(data) if length is None else length, chip, slot)


def test_app_only_image_is_accepted_with_version_and_project():
    chip_id, segments, version, project = check(esp_image())
    assert (chip_id, segments, version, project) == (0, 2, "0x01020304", "hanota-test")
    assert ei.parse_version(version) == 0x01020304


def test_s3_image_is_accepted_on_s3_and_refused_on_esp32():
    img = esp_image(chip_id=9)
    assert check(img, "esp32s3")[0] == 9
    with pytest.raises(ei.EspImageError) as exc:
        check(img, "esp32")
    assert exc.value.code == "WRONG_CHIP" and "esp32s3" in str(exc.value)


@pytest.mark.parametrize(
    "data,code",
    [
        (merged_image(), "NOT_APP"),
        (esp_image(app=False), "NOT_APP"),
        (os.urandom(0x20000), "NOT_ESP_IMAGE"),
        (b"", "EMPTY"),
        (esp_image()[:0x60], "TRUNCATED"),
        (esp_image()[:-40], "TRUNCATED"),
        (esp_image(hash_appended=False), "NO_HASH"),
    ],
    ids=["merged", "bootloader", "random", "empty", "header-only", "cut-short", "no-hash"],
)
def test_non_app_payloads_are_refused(data: bytes, code: str):
    with pytest.raises(ei.EspImageError) as exc:
        check(data)
    assert exc.value.code == code, str(exc.value)


def test_merged_image_message_says_what_to_use_instead():
    with pytest.raises(ei.EspImageError) as exc:
        check(merged_image())
    assert "merged firmware.bin" in str(exc.value) and "app-only" in str(exc.value)


def test_image_bigger_than_slot_is_refused_before_reading():
    img = esp_image(body=0x2000)
    with pytest.raises(ei.EspImageError) as exc:
        check(img, slot=0x1000)
    assert exc.value.code == "TOO_LARGE" and str(len(img)) in str(exc.value)


def test_one_flipped_byte_fails_the_appended_hash():
    img = bytearray(esp_image())
    img[0x400] ^= 1
    with pytest.raises(ei.EspImageError) as exc:
        check(bytes(img))
    assert exc.value.code == "BAD_HASH"


def test_trailing_slot_bytes_after_the_image_are_ignored():
    img = esp_image()
    assert check(img + b"\xff" * 100)[0] == 0


def test_synthetic_image_passes_esptool_image_info(tmp_path: Path):
    f = tmp_path / "app.bin"
    f.write_bytes(esp_image())
    esptool = str(Path(sys.executable).parent / "esptool")
    res = subprocess.run([esptool, "image-info", str(f)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout.lower()
    assert "checksum" in out and "invalid" not in out, res.stdout
    assert "0xabcd5432" in out or "application information" in out, res.stdout


@pytest.mark.parametrize(
    "version,value",
    [
        ("0x01020304", 0x01020304),
        ("0xFFFFFFFF", 0xFFFFFFFF),
        ("0x1", 1),
        ("", None),
        ("v1.28.0", None),
        ("0x", None),
        ("0x123456789", None),
        ("0x-1", None),
        ("0x 1", None),
    ],
)
def test_parse_version_takes_only_a_hex_version(version: str, value: int | None):
    assert ei.parse_version(version) == value


def test_appended_hash_is_the_last_32_bytes_of_the_image_not_of_the_slot():
    img = esp_image()
    assert ei.appended_hash(reader(img + b"\xff" * 4096), SLOT) == img[-32:]
    with pytest.raises(ei.EspImageError) as exc:
        ei.appended_hash(reader(esp_image(hash_appended=False)), SLOT)
    assert exc.value.code == "NO_HASH"
    with pytest.raises(ei.EspImageError) as exc:
        ei.appended_hash(reader(b"\xff" * 4096), SLOT)
    assert exc.value.code == "NOT_ESP_IMAGE"


@pytest.mark.micropython
def test_checks_under_micropython(tmp_path: Path):
    cases = {
        "app.bin": (esp_image(), "esp32", "OK"),
        "s3.bin": (esp_image(chip_id=9), "esp32", "WRONG_CHIP"),
        "merged.bin": (merged_image(), "esp32", "NOT_APP"),
        "random.bin": (os.urandom(4096), "esp32", "NOT_ESP_IMAGE"),
        "big.bin": (esp_image(body=0x2000), "small", "TOO_LARGE"),
        "flipped.bin": (esp_image()[:0x400] + b"\x00" + esp_image()[0x401:], "esp32", "BAD_HASH"),
    }
    for name, (data, _, _) in cases.items():
        (tmp_path / name).write_bytes(data)
    plan = json.dumps({n: [c, want] for n, (_, c, want) in cases.items()})
    code = f"""
import json, os
from ports import esp32_image as ei
def reader(f):
    def read(off, buf):
        f.seek(off)
        n = f.readinto(buf)
        for i in range(n, len(buf)):
            buf[i] = 0xFF
    return read
for name, (chip, want) in json.loads({plan!r}).items():
    slot = 0x1000 if chip == "small" else 0x180000
    chip = "esp32" if chip == "small" else chip
    f = open(name, "rb")
    size = os.stat(name)[6]
    try:
        ei.check_app(reader(f), size, chip, slot, bytearray(1024))
        got = "OK"
    except ei.EspImageError as e:
        got = e.code
    f.close()
    assert got == want, (name, got, want)
    print(name, got)
f = open("app.bin", "rb")
print("hash", ei.appended_hash(reader(f), 0x180000) == open("app.bin", "rb").read()[-32:])
"""
    out = check_mpy(code, cwd=str(tmp_path))
    assert "flipped.bin BAD_HASH" in out
    assert "hash True" in out
