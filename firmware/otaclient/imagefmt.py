"""OTA file codec: ImageError, the 60-byte ZigBee OTA header and our manifest, parsed.

Fixed-size fields only (one codec for host and board); streaming lives in image.py, and
the host's half (pack, file names) in imagepack.py, which a board never loads.
See docs/image-format.md for the byte tables.
"""

import struct
import sys

from micropython import const

from otaclient import record

OTA_MAGIC = const(0x0BEEF11E)
HEADER_VERSION = const(0x0100)
HEADER_LENGTH = const(60)  # GBCS form: field control 0x0004 (hardware versions present)
FIELD_CONTROL = const(0x0004)
STACK_VERSION = const(0x0002)  # ZigBee PRO
MANIFEST_MAGIC = b"HNMF"
MANIFEST_VERSION = const(2)
MANIFEST_SIZE = const(96)
SIG_SIZE = const(64)
SIGNED_END = const(156)  # HEADER_LENGTH + MANIFEST_SIZE: what the manufacturer signs
CHUNK_SIZE = const(1024)  # firmware bytes per payload chunk (uncompressed): the write buffer
LINK_SIZE = const(16)  # SHA-256 truncated to 128 bits: a chunk's link to the next
SUPPLIER_TAG = b"\x00\x40"
TRAILER_SIZE = const(66)  # 00 40 + supplier signature
SECTOR_SIZE = const(4096)  # fragments start on flash-sector boundaries of the firmware
PIECE_SIZE = const(1024)  # firmware bytes per compressed piece (four per sector)
PIECE_MAX = const(1024 + 64)  # largest compressed piece accepted
WBITS = const(10)  # deflate window 1 KB, a piece's own (docs/image-format.md: why 1 KB)
MAX_FILE = const(750000)  # R1: a whole OTA file
FLAG_COMPRESSED = const(1)
FLAG_DELTA = const(2)  # the firmware bytes are a delta payload (docs/image-format.md)
_HDR = "<IHHHHHIH32sI"  # 56 bytes: magic .. total image size
_MAN = "<4sBBHHHHHIIIIHHIII32s16s"  # 96 bytes

Header = record(
    "Header",
    "magic header_version header_length field_control manufacturer_code image_type"
    " file_version stack_version header_string total_size security_credential_version"
    " destination hw_min hw_max",
)
Manifest = record(
    "Manifest",
    "format_version manufacturer_code image_type hw_min hw_max file_version"
    " security_counter key_id payload_length firmware_sha256 compressed fragment_index"
    " fragment_count fragment_offset fragment_length total_length chain_head delta",
)
try:  # host: a Manifest made without `delta` is a full image's (board tuples take any)
    Manifest.__new__.__defaults__ = (False,)
except AttributeError:
    pass
# Field indexes. Board code reads records by index (a board's records are plain tuples:
# otaclient.record); the device build folds these into literals (hanota.constfold).
H_LENGTH = const(2)
H_MFR = const(4)
H_TYPE = const(5)
H_VERSION = const(6)
H_TOTAL_SIZE = const(9)
H_HW_MIN = const(12)
H_HW_MAX = const(13)
M_MFR = const(1)
M_TYPE = const(2)
M_HW_MIN = const(3)
M_HW_MAX = const(4)
M_VERSION = const(5)
M_COUNTER = const(6)
M_KEY_ID = const(7)
M_PAYLOAD = const(8)
M_SHA256 = const(9)
M_COMPRESSED = const(10)
M_INDEX = const(11)
M_COUNT = const(12)
M_OFFSET = const(13)
M_LENGTH = const(14)
M_TOTAL = const(15)
M_CHAIN = const(16)
M_DELTA = const(17)


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


def parse_manifest(buf, header):
    """Parse and check the manifest against its header; BAD_MANIFEST / BAD_FRAGMENT / SIZE_MISMATCH."""
    if len(buf) < MANIFEST_SIZE:
        raise ImageError("TRUNCATED", "manifest")
    f = struct.unpack_from(_MAN, buf, 0)
    if f[0] != MANIFEST_MAGIC or f[1] != MANIFEST_VERSION or f[3] != MANIFEST_SIZE:
        raise ImageError("BAD_MANIFEST", "magic/version/length")
    if f[2] & ~(FLAG_COMPRESSED | FLAG_DELTA):
        raise ImageError("BAD_MANIFEST", "flags")
    m = Manifest(
        f[1],
        *(f[4:12] + (bytes(f[17]), bool(f[2] & 1)) + f[12:17] + (bytes(f[18]), bool(f[2] & 2))),
    )
    _check_target(m, header)
    _check_fragment(m)
    _check_size(m, header)
    return m


def _check_target(m, h):
    if m[M_HW_MIN] > m[M_HW_MAX]:
        raise ImageError("BAD_MANIFEST", "hw_min > hw_max")
    if (m[M_MFR], m[M_TYPE], m[M_VERSION], m[M_HW_MIN], m[M_HW_MAX]) != (
        h[H_MFR],
        h[H_TYPE],
        h[H_VERSION],
        h[H_HW_MIN],
        h[H_HW_MAX],
    ):
        raise ImageError("BAD_MANIFEST", "differs from OTA header")


def _check_fragment(m):
    if not (m[M_INDEX] < m[M_COUNT] and m[M_LENGTH] and m[M_TOTAL]):
        raise ImageError("BAD_FRAGMENT", "index/count/length")
    end = m[M_OFFSET] + m[M_LENGTH]
    if end > m[M_TOTAL]:
        raise ImageError("BAD_FRAGMENT", "offset beyond total")
    if m[M_OFFSET] % SECTOR_SIZE or (end < m[M_TOTAL] and end % SECTOR_SIZE):
        raise ImageError("BAD_FRAGMENT", "not sector aligned")
    if (m[M_INDEX] == 0) != (m[M_OFFSET] == 0):
        raise ImageError("BAD_FRAGMENT", "first fragment must start at 0")
    if (m[M_INDEX] == m[M_COUNT] - 1) != (end == m[M_TOTAL]):
        raise ImageError("BAD_FRAGMENT", "last fragment must end at total")
    if m[M_DELTA] and m[M_COUNT] != 1:  # a delta is applied in one pass: one file
        raise ImageError("BAD_FRAGMENT", "fragmented delta")
    # uncompressed: the fragment's chunks, each but the last followed by the next one's link
    links = (m[M_LENGTH] - 1) // CHUNK_SIZE * LINK_SIZE
    if not m[M_COMPRESSED] and m[M_PAYLOAD] != m[M_LENGTH] + links:
        raise ImageError("BAD_MANIFEST", "payload length")


def _check_size(m, h):
    rest = h[H_TOTAL_SIZE] - (SIGNED_END + SIG_SIZE + m[M_PAYLOAD])
    if rest != 0 and rest != TRAILER_SIZE:
        raise ImageError("SIZE_MISMATCH", "total size vs manifest")


def key_id(pub64):
    """Key id: first 4 bytes of SHA-256(X || Y), big-endian."""
    import hashlib

    return int.from_bytes(hashlib.sha256(bytes(pub64)).digest()[:4], "big")


if sys.implementation.name != "micropython":  # host callers: the whole codec from one module
    from otaclient.imagepack import *  # noqa: E402, F403
