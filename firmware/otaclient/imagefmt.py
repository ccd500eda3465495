"""OTA file codec: ImageError, the 60-byte ZigBee OTA header and our manifest, pack and parse.

Fixed-size fields only (one codec for host and board); streaming lives in image.py.
See docs/image-format.md for the byte tables.
"""

import struct
from collections import namedtuple

from micropython import const

OTA_MAGIC = const(0x0BEEF11E)
HEADER_VERSION = const(0x0100)
HEADER_LENGTH = const(60)  # GBCS form: field control 0x0004 (hardware versions present)
FIELD_CONTROL = const(0x0004)
STACK_VERSION = const(0x0002)  # ZigBee PRO
MANIFEST_MAGIC = b"HNMF"
MANIFEST_VERSION = const(1)
MANIFEST_SIZE = const(80)
SIG_SIZE = const(64)
SUPPLIER_TAG = b"\x00\x40"
TRAILER_SIZE = const(66)  # 00 40 + supplier signature
SECTOR_SIZE = const(4096)  # fragments start on flash-sector boundaries of the firmware
PIECE_SIZE = const(2048)  # firmware bytes per compressed piece (two per sector)
PIECE_MAX = const(2048 + 64)  # largest compressed piece accepted
WBITS = const(11)  # deflate window 2 KB (docs/image-format.md: why not 1 KB or 4 KB)
MAX_FILE = const(750000)  # R1: a whole OTA file
FLAG_COMPRESSED = const(1)
_HDR = "<IHHHHHIH32sI"  # 56 bytes: magic .. total image size
_MAN = "<4sBBHHHHHIIIIHHIII32s"  # 80 bytes

Header = namedtuple(
    "Header",
    "magic header_version header_length field_control manufacturer_code image_type"
    " file_version stack_version header_string total_size security_credential_version"
    " destination hw_min hw_max",
)
Manifest = namedtuple(
    "Manifest",
    "format_version manufacturer_code image_type hw_min hw_max file_version"
    " security_counter key_id payload_length firmware_sha256 compressed fragment_index"
    " fragment_count fragment_offset fragment_length total_length",
)


class ImageError(ValueError):
    """A refused image; `code` is one of the contract's fixed names."""

    def __init__(self, code, detail=""):
        super().__init__(code + (": " + detail if detail else ""))
        self.code = code
        self.detail = detail


def _need(buf, n):
    if len(buf) < n:
        raise ImageError("TRUNCATED", "header")


def parse_header(buf, field_control=None):
    """Parse a ZigBee OTA header from the start of buf; any field control unless one is required."""
    _need(buf, 10)
    magic, ver, hlen, fc = struct.unpack_from("<IHHH", buf, 0)
    if magic != OTA_MAGIC:
        raise ImageError("BAD_MAGIC")
    if ver != HEADER_VERSION:
        raise ImageError("BAD_HEADER_VERSION")
    if fc & ~7 or (field_control is not None and fc != field_control):
        raise ImageError("BAD_FIELD_CONTROL")
    if hlen != 56 + (fc & 1) + (fc & 2) * 4 + (fc & 4):
        raise ImageError("BAD_HEADER_LENGTH")
    _need(buf, hlen)
    f = struct.unpack_from(_HDR, buf, 0)
    off = 56
    cred = dest = hw_min = hw_max = None
    if fc & 1:
        cred = buf[off]
        off += 1
    if fc & 2:
        dest = bytes(buf[off : off + 8])
        off += 8
    if fc & 4:
        hw_min, hw_max = struct.unpack_from("<HH", buf, off)
    return Header(*(f[:8] + (bytes(f[8]).rstrip(b"\x00"), f[9], cred, dest, hw_min, hw_max)))


def pack_header(manufacturer_code, image_type, file_version, hw_min, hw_max, total_size, text=b""):
    """The 60-byte GBCS-form OTA header."""
    return struct.pack(
        _HDR + "HH",
        OTA_MAGIC,
        HEADER_VERSION,
        HEADER_LENGTH,
        FIELD_CONTROL,
        manufacturer_code,
        image_type,
        file_version,
        STACK_VERSION,
        text[:32],
        total_size,
        hw_min,
        hw_max,
    )


def pack_manifest(m):
    """The MANIFEST_SIZE bytes of a Manifest."""
    return struct.pack(
        _MAN,
        MANIFEST_MAGIC,
        m.format_version,
        FLAG_COMPRESSED if m.compressed else 0,
        MANIFEST_SIZE,
        m.manufacturer_code,
        m.image_type,
        m.hw_min,
        m.hw_max,
        m.file_version,
        m.security_counter,
        m.key_id,
        m.payload_length,
        m.fragment_index,
        m.fragment_count,
        m.fragment_offset,
        m.fragment_length,
        m.total_length,
        m.firmware_sha256,
    )


def parse_manifest(buf, header):
    """Parse and check the manifest against its header; BAD_MANIFEST / BAD_FRAGMENT / SIZE_MISMATCH."""
    if len(buf) < MANIFEST_SIZE:
        raise ImageError("TRUNCATED", "manifest")
    f = struct.unpack_from(_MAN, buf, 0)
    if f[0] != MANIFEST_MAGIC or f[1] != MANIFEST_VERSION or f[3] != MANIFEST_SIZE:
        raise ImageError("BAD_MANIFEST", "magic/version/length")
    if f[2] & ~FLAG_COMPRESSED:
        raise ImageError("BAD_MANIFEST", "flags")
    m = Manifest(f[1], *(f[4:12] + (bytes(f[17]), bool(f[2] & 1)) + f[12:17]))
    _check_target(m, header)
    _check_fragment(m)
    _check_size(m, header)
    return m


def _check_target(m, h):
    if m.hw_min > m.hw_max:
        raise ImageError("BAD_MANIFEST", "hw_min > hw_max")
    if (m.manufacturer_code, m.image_type, m.file_version, m.hw_min, m.hw_max) != (
        h.manufacturer_code,
        h.image_type,
        h.file_version,
        h.hw_min,
        h.hw_max,
    ):
        raise ImageError("BAD_MANIFEST", "differs from OTA header")


def _check_fragment(m):
    if not (m.fragment_index < m.fragment_count and m.fragment_length and m.total_length):
        raise ImageError("BAD_FRAGMENT", "index/count/length")
    end = m.fragment_offset + m.fragment_length
    if end > m.total_length:
        raise ImageError("BAD_FRAGMENT", "offset beyond total")
    if m.fragment_offset % SECTOR_SIZE or (end < m.total_length and end % SECTOR_SIZE):
        raise ImageError("BAD_FRAGMENT", "not sector aligned")
    if (m.fragment_index == 0) != (m.fragment_offset == 0):
        raise ImageError("BAD_FRAGMENT", "first fragment must start at 0")
    if (m.fragment_index == m.fragment_count - 1) != (end == m.total_length):
        raise ImageError("BAD_FRAGMENT", "last fragment must end at total")
    if not m.compressed and m.payload_length != m.fragment_length:
        raise ImageError("BAD_MANIFEST", "payload length")


def _check_size(m, h):
    rest = h.total_size - (h.header_length + MANIFEST_SIZE + m.payload_length + SIG_SIZE)
    if rest != 0 and rest != TRAILER_SIZE:
        raise ImageError("SIZE_MISMATCH", "total size vs manifest")


def key_id(pub64):
    """Key id: first 4 bytes of SHA-256(X || Y), big-endian."""
    import hashlib

    return int.from_bytes(hashlib.sha256(bytes(pub64)).digest()[:4], "big")


def file_name(manufacturer_code, image_type, file_version, index=0, count=1):
    """MMMM-TTTT-VVVVVVVV[-K-of-N].zigbee (K 1-based, only when fragmented)."""
    name = "%04X-%04X-%08X" % (manufacturer_code, image_type, file_version)
    if count > 1:
        name += "-%d-of-%d" % (index + 1, count)
    return name + ".zigbee"


def make_check(manufacturer_code=None, image_type=None, hw_version=None):
    """A Verifier `check` refusing another manufacturer, image type or hardware version."""

    def check(header, manifest):
        if manufacturer_code is not None and manifest.manufacturer_code != manufacturer_code:
            raise ImageError("WRONG_MANUFACTURER")
        if image_type is not None and manifest.image_type != image_type:
            raise ImageError("WRONG_IMAGE_TYPE")
        if hw_version is not None and not manifest.hw_min <= hw_version <= manifest.hw_max:
            raise ImageError("HW_MISMATCH")

    return check
