"""ESP-IDF app images as the ESP32 port and the host flash check read them: header, app
descriptor, appended SHA-256. Pure code over a `read(offset, buf)` callback, no `esp32` import,
so it runs under CPython and the MicroPython unix port; it never writes flash, and otadata is
ports/otadata.py's.

Layout (ESP-IDF esp_app_format.h): 24-byte image header (magic 0xE9, segment count, ...,
chip id u16 at 12, hash_appended u8 at 23), 8-byte segment header (load addr, length), and in
an app image the first segment starts with esp_app_desc_t (magic 0xABCD5432) at 0x20.
A bootloader, or a merged firmware.bin (which starts with the bootloader), has no app
descriptor there: writing one into an OTA slot is the classic brick, so it is refused.
"""

import struct

from micropython import const

try:
    import hashlib
except ImportError:  # pragma: no cover - every target port has hashlib
    hashlib = None

IMAGE_MAGIC = const(0xE9)
APP_DESC_MAGIC = const(0xABCD5432)
_HDR_LEN = const(24)
_SEG_HDR_LEN = const(8)
_APP_DESC_OFF = const(0x20)
_MAX_SEGMENTS = const(16)
_APP_DESC_LEN = const(256)
HEAD_LEN = const(0x70)  # header + first segment header + app descriptor up to project_name

# esp_chip_id_t (ESP-IDF esp_app_format.h)
CHIP_IDS = {
    "esp32": 0x0000,
    "esp32s2": 0x0002,
    "esp32c3": 0x0005,
    "esp32s3": 0x0009,
    "esp32c2": 0x000C,
    "esp32c6": 0x000D,
    "esp32h2": 0x0010,
}


class EspImageError(ValueError):
    """A refused ESP image. `code` is one of: EMPTY TOO_LARGE TRUNCATED NOT_ESP_IMAGE
    BAD_HEADER UNKNOWN_CHIP WRONG_CHIP NOT_APP NO_HASH BAD_HASH."""

    def __init__(self, code, detail=""):
        super().__init__(code + ": " + detail if detail else code)
        self.code = code


def chip_name(chip_id):
    for name, cid in CHIP_IDS.items():
        if cid == chip_id:
            return name
    return "chip id 0x%04x" % chip_id


def _cstr(buf):
    buf = bytes(buf)
    end = buf.find(b"\x00")
    return (buf if end < 0 else buf[:end]).decode()


def check_head(head, chip, length, slot_size):
    """Check the first HEAD_LEN bytes of an image of `length` bytes meant for an OTA slot of
    `slot_size` bytes on `chip`. Returns (chip_id, segments, version, project)."""
    if length <= 0:
        raise EspImageError("EMPTY", "no image")
    if length > slot_size:
        raise EspImageError("TOO_LARGE", "%d bytes > slot %d bytes" % (length, slot_size))
    if length < HEAD_LEN or len(head) < HEAD_LEN:
        raise EspImageError("TRUNCATED", "%d bytes is shorter than an app image header" % length)
    if head[0] != IMAGE_MAGIC:
        raise EspImageError("NOT_ESP_IMAGE", "first byte 0x%02x, not 0xE9" % head[0])
    segments = head[1]
    if not 1 <= segments <= _MAX_SEGMENTS:
        raise EspImageError("BAD_HEADER", "segment count %d" % segments)
    want = CHIP_IDS.get(chip)
    if want is None:
        raise EspImageError("UNKNOWN_CHIP", "board chip %r" % chip)
    got = struct.unpack_from("<H", head, 12)[0]
    if got != want:
        raise EspImageError(
            "WRONG_CHIP", "image is for %s, this board is %s" % (chip_name(got), chip)
        )
    magic = struct.unpack_from("<I", head, _APP_DESC_OFF)[0]
    if magic != APP_DESC_MAGIC:
        raise EspImageError(
            "NOT_APP",
            "no app descriptor (0xABCD5432) at 0x20: a bootloader or a merged firmware.bin "
            "(bootloader first); an OTA slot takes the app-only image (micropython.bin, .app-bin)",
        )
    seg_len = struct.unpack_from("<I", head, _HDR_LEN + 4)[0]
    if seg_len < _APP_DESC_LEN or _HDR_LEN + _SEG_HDR_LEN + seg_len > length:
        raise EspImageError("BAD_HEADER", "first segment length %d" % seg_len)
    version = _cstr(head[0x30:0x50])
    project = _cstr(head[0x50:0x70])
    return got, segments, version, project


def image_end(read, head, length):
    """Walk the segment headers; return the image length the bootloader will read
    (segments, checksum padding, appended SHA-256). Raises TRUNCATED / NO_HASH."""
    seg = bytearray(_SEG_HDR_LEN)
    off = _HDR_LEN
    for _ in range(head[1]):
        if off + _SEG_HDR_LEN > length:
            raise EspImageError("TRUNCATED", "segment header at %d beyond %d" % (off, length))
        read(off, seg)
        off += _SEG_HDR_LEN + struct.unpack_from("<I", seg, 4)[0]
    end = (off | 15) + 1  # checksum byte ends a 16-byte block
    if head[23] != 1:
        raise EspImageError("NO_HASH", "image has no appended SHA-256 to verify")
    end += 32
    if end > length:
        raise EspImageError("TRUNCATED", "image needs %d bytes, has %d" % (end, length))
    return end


def verify_hash(read, end, buf):
    """SHA-256 of [0, end-32) must equal the 32 bytes at end-32. `buf` is the work buffer."""
    h = hashlib.sha256()
    mv = memoryview(buf)
    off = 0
    body = end - 32
    while off < body:
        n = min(len(buf), body - off)
        read(off, mv[:n])
        h.update(mv[:n])
        off += n
    stored = bytearray(32)
    read(body, stored)
    if h.digest() != bytes(stored):
        raise EspImageError("BAD_HASH", "SHA-256 over %d bytes does not match" % body)


def check_app(read, length, chip, slot_size, buf=None):
    """Full check of an app image of `length` bytes readable through `read(offset, buf)`:
    header, chip, app descriptor, size, and the appended SHA-256. Returns check_head's tuple."""
    if length <= 0 or length > slot_size:
        check_head(b"", chip, length, slot_size)  # raises EMPTY / TOO_LARGE
    head = bytearray(HEAD_LEN)
    if length >= HEAD_LEN:
        read(0, head)
    info = check_head(head, chip, length, slot_size)
    end = image_end(read, head, length)
    verify_hash(read, end, buf if buf is not None else bytearray(4096))
    return info


def appended_hash(read, length):
    """The SHA-256 appended to the image readable through read(offset, buf) in `length` bytes
    of flash (the 32 bytes that end it, which the bootloader checks). Raises EspImageError."""
    head = bytearray(HEAD_LEN)
    read(0, head)
    if head[0] != IMAGE_MAGIC or not 1 <= head[1] <= _MAX_SEGMENTS:
        raise EspImageError("NOT_ESP_IMAGE", "no image header")
    end = image_end(read, head, length)
    digest = bytearray(32)
    read(end - 32, digest)
    return bytes(digest)


def parse_version(text):
    """App descriptor version -> u32 when it is "0x" and 1-8 hex digits (a version the build
    was given, e.g. idf.py -D PROJECT_VER=0x01020304), else None: stock MicroPython leaves it
    empty (CONFIG_APP_EXCLUDE_PROJECT_VER_VAR=y), and "v1.28.0" names MicroPython, not the
    firmware the CH versions."""
    if not text.startswith("0x") or not 3 <= len(text) <= 10:
        return None
    for c in text[2:]:
        if c not in "0123456789abcdefABCDEF":
            return None
    return int(text[2:], 16)
