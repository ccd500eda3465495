"""Golden ESP32 vectors made with Espressif's own esptool 5.6.0: app images from a small
Xtensa ELF (`elf2image`), release-like merged .bin files (`merge-bin`), `image-info` verdicts,
and the partition tables of MicroPython v1.28's OTA CSVs.

The CSV text is MicroPython v1.28.0's, byte for byte; the table encoder here follows ESP-IDF's
documented binary format (32-byte entries, MD5 entry, 0xFF to 0xC00) independently of the
project's own encoder, and is pinned by the MD5 ESP32.md records for partitions-4MiB-ota.csv.
No ESP-IDF gen_esp32part.py is installed (it ships with ESP-IDF, not with esptool).
"""

from __future__ import annotations

import hashlib
import struct
import subprocess
import sys
from pathlib import Path

ESPTOOL = str(Path(sys.executable).parent / "esptool")
ESPEFUSE = str(Path(sys.executable).parent / "espefuse")
CHIP_ID = {"esp32": 0, "esp32s3": 9}
BOOTLOADER_AT = {"esp32": 0x1000, "esp32s3": 0x0}  # flash offset of a release .bin

# ports/esp32/partitions-4MiB-ota.csv at MicroPython v1.28.0, byte for byte
MPY128_4MIB_OTA_CSV = """\
# Partition table for MicroPython with OTA support using 4MB flash
# Notes: the offset of the partition table itself is set in
# $IDF_PATH/components/partition_table/Kconfig.projbuild.
# Name,   Type, SubType, Offset,   Size,     Flags
nvs,      data, nvs,     0x9000,   0x4000,
otadata,  data, ota,     0xd000,   0x2000,
phy_init, data, phy,     0xf000,   0x1000,
ota_0,    app,  ota_0,   0x10000,  0x180000,
ota_1,    app,  ota_1,   0x190000, 0x180000,
"""
# ports/esp32/partitions-8MiBplus-ota.csv at MicroPython v1.28.0, byte for byte
MPY128_8MIB_OTA_CSV = """\
# This partition table is for devices with 8MiB or more of flash and OTA support.
# The first 5056kiB is used for bootloader, nvs, phy_init and firmware.
# The remaining flash is for the user filesystem(s).

# Notes: the offset of the partition table itself is set in
# $IDF_PATH/components/partition_table/Kconfig.projbuild.
# Name,   Type, SubType, Offset,   Size,     Flags
nvs,      data, nvs,     0x9000,   0x4000,
otadata,  data, ota,     0xd000,   0x2000,
phy_init, data, phy,     0xf000,   0x1000,
ota_0,    app,  ota_0,   0x10000,  0x270000,
ota_1,    app,  ota_1,   0x280000, 0x270000,
"""
MD5_4MIB_OTA = "6f91ac1bb2b49e61a1daefd12de800a2"  # ESP32.md, from ESP-IDF v5.5.1 gen_esp32part
# ESP32.md's first 12 bytes of each 4MiB-ota entry (magic, type, subtype, offset, size)
ENTRIES_4MIB_OTA = (
    "aa50 0102 00900000 00400000", "aa50 0100 00d00000 00200000",
    "aa50 0101 00f00000 00100000", "aa50 0010 00000100 00001800",
    "aa50 0011 00001900 00001800",
)  # fmt: skip

_TYPES = {"app": 0x00, "data": 0x01}
_SUBTYPES = {"ota_0": 0x10, "ota_1": 0x11, "factory": 0x00, "ota": 0x00, "phy": 0x01,
             "nvs": 0x02, "fat": 0x81, "littlefs": 0x83}  # fmt: skip


def csv_rows(text: str) -> list[tuple[str, str, str, int, int]]:
    """(name, type, subtype, offset, size) per row of a partition CSV with explicit offsets."""
    out = []
    for line in text.splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, typ, sub, off, size = (c.strip() for c in line.split(",")[:5])
            out.append((name, typ, sub, int(off, 0), int(size, 0)))
    return out


def table_bin(rows: list[tuple[str, str, str, int, int]], md5: bool = True) -> bytes:
    """A binary partition table: 32-byte entries `AA 50 type subtype offset size label[16]
    flags`, then `EB EB` + 14 x FF + MD5 of the entries, then FF to 0xC00."""
    out = b"".join(
        b"\xaa\x50" + struct.pack("<BBII", _TYPES[t], _SUBTYPES[s], o, n)
        + name.encode().ljust(16, b"\0") + bytes(4)
        for name, t, s, o, n in rows
    )  # fmt: skip
    if md5:
        out += b"\xeb\xeb" + b"\xff" * 14 + hashlib.md5(out).digest()
    return out + b"\xff" * (0xC00 - len(out))


def app_desc(version: bytes = b"", project: bytes = b"micropython") -> bytes:
    """esp_app_desc_t (256 bytes): magic, secure_version, reserv, version[32], project[32],
    time[16], date[16], idf_ver[32], app_elf_sha256[32], ... ; a stock MicroPython build leaves
    version empty (CONFIG_APP_EXCLUDE_PROJECT_VER_VAR=y)."""
    desc = struct.pack("<III", 0xABCD5432, 0, 0) + bytes(4)
    desc += version.ljust(32, b"\0") + project.ljust(32, b"\0")
    desc += b"12:00:00".ljust(16, b"\0") + b"Jan  1 2026".ljust(16, b"\0")
    desc += b"v5.5.1".ljust(32, b"\0") + bytes(32)
    return desc.ljust(256, b"\0")


def xtensa_elf(sections: list[tuple[str, int, bytes]], entry: int) -> bytes:
    """A minimal ELF32 little-endian Xtensa (e_machine 0x5E) executable: one PROGBITS
    section per (name, address, data), a .shstrtab, no program headers."""
    names = b"\0" + b"".join(n.encode() + b"\0" for n, _, _ in sections) + b".shstrtab\0"
    body = b""
    placed = []
    off = 0x34
    for _, addr, data in sections:
        placed.append((off + len(body), addr, data))
        body += data + bytes(-len(data) % 4)
    strtab_off = off + len(body)
    body += names + bytes(-len(names) % 4)
    shoff = off + len(body)
    shdrs = bytes(40)  # SHN_UNDEF
    name_at = 1
    for (name, _, _), (foff, addr, data) in zip(sections, placed, strict=True):
        shdrs += struct.pack("<10I", name_at, 1, 0x6, addr, foff, len(data), 0, 0, 4, 0)
        name_at += len(name) + 1
    shdrs += struct.pack("<10I", name_at, 3, 0, 0, strtab_off, len(names), 0, 0, 1, 0)
    ident = b"\x7fELF\x01\x01\x01" + bytes(9)
    head = ident + struct.pack(
        "<HHIIIIIHHHHHH", 2, 0x5E, 1, entry, 0, shoff, 0, 0x34, 0, 0, 40, len(sections) + 2,
        len(sections) + 1,
    )  # fmt: skip
    return head + body + shdrs


def esptool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([ESPTOOL, *args], capture_output=True, text=True)


def elf2image(tmp: Path, chip: str = "esp32", version: bytes = b"", body: int = 4096) -> bytes:
    """An app image made by `esptool elf2image` from a small ELF: app descriptor at the start
    of flash-mapped rodata (DROM, as ESP-IDF links .flash.appdesc), code in IRAM."""
    drom, iram = {"esp32": (0x3F400020, 0x40080000), "esp32s3": (0x3C000020, 0x40370000)}[chip]
    rodata = app_desc(version) + bytes((i * 7) & 0xFF for i in range(body))
    code = bytes((i * 13) & 0xFF for i in range(1024))
    elf = tmp / f"app-{chip}.elf"
    elf.write_bytes(xtensa_elf([(".flash.appdesc", drom, rodata), (".iram0.text", iram, code)],
                               iram))  # fmt: skip
    out = tmp / f"app-{chip}.bin"
    res = esptool("--chip", chip, "elf2image", "--flash-size", "4MB", "-o", str(out), str(elf))
    assert res.returncode == 0, res.stdout + res.stderr
    return out.read_bytes()


def bootloader(tmp: Path, chip: str = "esp32") -> bytes:
    """A bootloader-like image by `esptool elf2image`: RAM segments only, the DRAM one opening
    with esp_bootloader_desc_t (magic byte 0x50), as ESP-IDF 5's second-stage bootloader."""
    dram, iram = {"esp32": (0x3FFF0000, 0x40078000), "esp32s3": (0x3FCD0000, 0x403C8000)}[chip]
    # esp_bootloader_desc_t: magic 0x50, reserved[2], secure_version, version u32,
    # idf_ver[32], date_time[24], reserved2[16]
    desc = bytes([0x50, 0, 0, 0]) + struct.pack("<I", 1) + b"v5.5.1".ljust(32, b"\0")
    desc += b"Jan  1 2026 12:00:00".ljust(24, b"\0") + bytes(16)
    code = bytes((i * 5) & 0xFF for i in range(2048))
    elf = tmp / f"bootloader-{chip}.elf"
    elf.write_bytes(xtensa_elf([(".dram0.bootdesc", dram, desc), (".iram_loader.text", iram, code)],
                               iram))  # fmt: skip
    out = tmp / f"bootloader-{chip}.bin"
    res = esptool("--chip", chip, "elf2image", "--flash-size", "4MB", "-o", str(out), str(elf))
    assert res.returncode == 0, res.stdout + res.stderr
    return out.read_bytes()


def image_info(tmp: Path, data: bytes, chip: str = "esp32") -> str:
    """esptool image-info's report on `data` (it exits 0 and says "invalid" on a bad checksum
    or SHA-256, and exits non-zero on what it cannot parse)."""
    f = tmp / "image-info.bin"
    f.write_bytes(data)
    res = esptool("--chip", chip, "image-info", str(f))
    return f"rc={res.returncode}\n{res.stdout}{res.stderr}"


def merge_bin(tmp: Path, chip: str, bootloader: bytes, table: bytes, app: bytes) -> bytes:
    """`esptool merge-bin` as MicroPython's release .bin is laid out: bootloader at 0x1000
    (ESP32) or 0 (S3), partition table at 0x8000, app at 0x10000; the file starts at the
    bootloader's offset (`--target-offset`), as MicroPython's makeimg.py writes firmware.bin."""
    files = []
    for name, at, data in (("bootloader", BOOTLOADER_AT[chip], bootloader),
                           ("partition-table", 0x8000, table), ("micropython", 0x10000, app)):  # fmt: skip
        path = tmp / f"{name}.bin"
        path.write_bytes(data)
        files += [hex(at), str(path)]
    out = tmp / f"firmware-{chip}.bin"
    res = esptool("--chip", chip, "merge-bin", "--target-offset", hex(BOOTLOADER_AT[chip]),
                  "-o", str(out), *files)  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    return out.read_bytes()
