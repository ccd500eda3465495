"""The host's half of the OTA file codec: pack the header and manifest, name files, check offers.

Same layout as imagefmt.py (its constants and records); a board only parses, so it never
loads this module (each function object is heap on a board). Host callers reach it
through imagefmt, which re-exports it off the board.
"""

import struct

from otaclient.imagefmt import (
    _HDR,
    _MAN,
    FIELD_CONTROL,
    FLAG_COMPRESSED,
    FLAG_DELTA,
    HEADER_LENGTH,
    HEADER_VERSION,
    M_HW_MAX,
    M_HW_MIN,
    M_MFR,
    M_TYPE,
    MANIFEST_MAGIC,
    MANIFEST_SIZE,
    OTA_MAGIC,
    STACK_VERSION,
    ImageError,
)

__all__ = ["pack_header", "pack_manifest", "file_name", "make_check"]


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
    """The MANIFEST_SIZE bytes of a Manifest (host side: it reads fields by name, and a
    board's records are plain tuples; boards only parse)."""
    return struct.pack(
        _MAN,
        MANIFEST_MAGIC,
        m.format_version,
        (FLAG_COMPRESSED if m.compressed else 0) | (FLAG_DELTA if m.delta else 0),
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
        m.chain_head,
    )


def file_name(manufacturer_code, image_type, file_version, index=0, count=1):
    """MMMM-TTTT-VVVVVVVV[-K-of-N].zigbee (K 1-based, only when fragmented)."""
    name = "%04X-%04X-%08X" % (manufacturer_code, image_type, file_version)
    if count > 1:
        name += "-%d-of-%d" % (index + 1, count)
    return name + ".zigbee"


def make_check(manufacturer_code=None, image_type=None, hw_version=None):
    """A Verifier `check` refusing another manufacturer, image type or hardware version."""

    def check(header, m):
        if manufacturer_code is not None and m[M_MFR] != manufacturer_code:
            raise ImageError("WRONG_MANUFACTURER")
        if image_type is not None and m[M_TYPE] != image_type:
            raise ImageError("WRONG_IMAGE_TYPE")
        if hw_version is not None and not m[M_HW_MIN] <= hw_version <= m[M_HW_MAX]:
            raise ImageError("HW_MISMATCH")

    return check
