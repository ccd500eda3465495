"""ESP-IDF v5.5.1's app image check (esp_image_verify, and the bootloader's load-time check) for
the ESP32 fake, re-derived from components/bootloader_support/src/esp_image_format.c.

Written apart from firmware/ports/esp32_image.py on purpose: a port bug copied into its own
fake would pass. Runs under CPython and the MicroPython unix port. Not modelled: secure boot
signatures, anti-rollback eFuses, and the load-time overlap checks against the bootloader's own
RAM (they need its linker map); the load-address window check is modelled.
"""

# ruff: noqa: UP031 (runs under MicroPython too: %-formatting, as firmware/ does)

import hashlib
import struct

_MAGIC = 0xE9
_CHECKSUM_INITIAL = 0xEF  # ESP_ROM_CHECKSUM_INITIAL
_MAX_SEGMENTS = 16  # ESP_IMAGE_MAX_SEGMENTS
_MAX_ADDR = 0x1000000  # ESP_IMAGE_MAX_FLASH_ADDR_SIZE (16 MB)
_MMU_PAGE = 0x10000  # SPI_FLASH_MMU_PAGE_SIZE on ESP32 and ESP32-S3 (not configurable there)
_APP_DESC_MAGIC = 0xABCD5432

# components/soc/<chip>/include/soc/soc.h: (chip id, mapped windows IROM/DROM, load windows
# DRAM/IRAM/RTC fast/RTC slow)
CHIPS = {
    "esp32": (
        0,
        ((0x400D0000, 0x40400000), (0x3F400000, 0x3F800000)),
        (
            (0x3FFAE000, 0x40000000),
            (0x40080000, 0x400AA000),
            (0x400C0000, 0x400C2000),
            (0x3FF80000, 0x3FF82000),
            (0x50000000, 0x50002000),
        ),
    ),
    "esp32s3": (
        9,
        ((0x42000000, 0x44000000), (0x3C000000, 0x3E000000)),
        (
            (0x3FC88000, 0x3FD00000),
            (0x40370000, 0x403E0000),
            (0x600FE000, 0x60100000),
            (0x50000000, 0x50002000),
        ),
    ),
}


class ImageInvalid(Exception):
    """ESP_ERR_IMAGE_INVALID (or ESP_FAIL): what esp_image_verify returns; `reason` says why."""


def _set(rev_full):
    # IS_FIELD_SET (bootloader_common_loader.c): 0 and 0xFFFF mean "no limit"
    return rev_full != 0xFFFF and rev_full != 0


def _in(windows, lo, hi):
    for a, b in windows:
        if a <= lo and hi <= b:
            return True
    return False


def _check_header(hdr, chip, chip_rev):
    # verify_image_header + bootloader_common_check_chip_validity (application image)
    if hdr[0] != _MAGIC:
        raise ImageInvalid("invalid magic byte 0x%02x" % hdr[0])
    chip_id = struct.unpack_from("<H", hdr, 12)[0]
    if chip_id != CHIPS[chip][0]:
        raise ImageInvalid("mismatch chip ID, expected %d, found %d" % (CHIPS[chip][0], chip_id))
    min_rev, max_rev = struct.unpack_from("<HH", hdr, 15)
    if not min_rev <= chip_rev:
        raise ImageInvalid("chip revision %d < required %d" % (chip_rev, min_rev))
    if _set(max_rev) and chip_rev > max_rev:
        raise ImageInvalid("chip revision %d > allowed %d" % (chip_rev, max_rev))
    if hdr[1] > _MAX_SEGMENTS:
        raise ImageInvalid("segment count %d exceeds max %d" % (hdr[1], _MAX_SEGMENTS))


def _check_segment(i, load, length, data_off, chip, load_mode):
    # verify_segment_header, process_segment (and verify_load_addresses when loading)
    if length & 3 or length >= _MAX_ADDR:
        raise ImageInvalid("invalid segment length 0x%x" % length)
    mapped = _in(CHIPS[chip][1], load, load)
    if mapped and data_off % _MMU_PAGE != load % _MMU_PAGE:
        raise ImageInvalid(
            "segment %d load address 0x%08x doesn't match data 0x%08x" % (i, load, data_off)
        )
    loaded = not mapped and load >= 0x10000000
    if load_mode and loaded and length and not _in(CHIPS[chip][2], load, load + length):
        raise ImageInvalid(
            "segment %d 0x%08x-0x%08x: bad load address range" % (i, load, load + length)
        )


def _efuse_blk(data, blk_rev):
    # process_segment_data, segment 0 of an app on chips other than ESP32:
    # bootloader_common_check_efuse_blk_validity(app_desc min/max_efuse_blk_rev_full)
    if struct.unpack_from("<I", data, 0)[0] != _APP_DESC_MAGIC:
        return
    lo, hi = struct.unpack_from("<HH", data, 0xB0)
    if _set(lo) and not lo <= blk_rev:
        raise ImageInvalid("image requires efuse blk rev >= %d, chip has %d" % (lo, blk_rev))
    if _set(hi) and blk_rev > hi:
        raise ImageInvalid("image requires efuse blk rev <= %d, chip has %d" % (hi, blk_rev))


def verify(read, part_addr, part_size, chip, chip_rev, blk_rev=0, load_mode=False):
    """esp_image_verify(ESP_IMAGE_VERIFY) of the app in the partition at flash `part_addr` of
    `part_size` bytes, through read(offset_in_partition, n) -> bytes. `load_mode`: the
    bootloader's bootloader_load_image, which also checks where segments load. Returns the
    image length; raises ImageInvalid."""
    hdr = read(0, 24)
    _check_header(hdr, chip, chip_rev)
    sha = hashlib.sha256(hdr) if hdr[23] else None
    checksum = _CHECKSUM_INITIAL
    off = 24
    for i in range(hdr[1]):
        seg = read(off, 8)
        if sha:
            sha.update(seg)
        load, length = struct.unpack("<II", seg)
        _check_segment(i, load, length, part_addr + off + 8, chip, load_mode)
        if off + 8 + length > part_size:  # the real code fails at the length check below
            raise ImageInvalid("image length doesn't fit in partition length %d" % part_size)
        data = read(off + 8, length)
        if i == 0 and chip != "esp32":
            _efuse_blk(data, blk_rev)
        for j in range(0, length, 4):
            checksum ^= struct.unpack_from("<I", data, j)[0]
        if sha:
            sha.update(data)
        off += 8 + length
    pad = ((off + 1 + 15) & ~15) - off  # process_checksum: checksum byte ends a 16-byte block
    tail = read(off, pad)
    calc = (checksum ^ (checksum >> 8) ^ (checksum >> 16) ^ (checksum >> 24)) & 0xFF
    if calc != tail[pad - 1]:
        raise ImageInvalid("checksum failed: calculated 0x%02x read 0x%02x" % (calc, tail[pad - 1]))
    off += pad
    if hdr[23]:
        sha.update(tail)
        digest = read(off, 32)
        off += 32
    if off > part_size:
        raise ImageInvalid("image length %d doesn't fit in partition length %d" % (off, part_size))
    if hdr[23] and sha.digest() != bytes(digest):
        raise ImageInvalid("image hash failed - image is corrupt")
    return off
