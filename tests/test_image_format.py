"""docs/image-format.md matches the codec; golden header bytes; round trips."""

import re
import struct

from hanota.paths import DOCS
from otaclient import image, imagefmt


def _table(title):
    text = (DOCS / "image-format.md").read_text()
    section = text.split(title, 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (\d+) \| (\d+) \| (\w+) \|", section, re.M)
    return [(int(o), int(s), name) for o, s, name in rows]


def test_documented_manifest_table_matches_the_code():
    rows = _table("## Manifest (96 bytes")
    assert sum(s for _, s, _ in rows) == image.MANIFEST_SIZE == struct.calcsize(imagefmt._MAN)
    assert all(o == sum(s for _, s, _ in rows[:i]) for i, (o, _, _) in enumerate(rows))
    m = image.Manifest(
        2,
        0x1234,
        0x84,
        1,
        2,
        0x01020304,
        9,
        0xAABBCCDD,
        4096,
        bytes(range(32)),
        True,
        1,
        3,
        4096,
        4096,
        12288,
        bytes(range(100, 116)),
    )
    raw = image.pack_manifest(m)
    fields = {name: (o, s) for o, s, name in rows}
    for name in m._fields:
        if name in ("compressed", "delta"):  # flag bits, not fields of their own
            continue
        o, s = fields[name]
        value = getattr(m, name)
        want = value if isinstance(value, bytes) else value.to_bytes(s, "little")
        assert raw[o : o + s] == want, name
    assert raw[0:4] == image.MANIFEST_MAGIC and raw[5] == image.FLAG_COMPRESSED


def test_documented_header_table_matches_the_code():
    rows = _table("## OTA header (60 bytes)")
    assert sum(s for _, s, _ in rows) == image.HEADER_LENGTH
    raw = image.pack_header(0x1234, 0x0084, 0x01020304, 0x0100, 0x01FF, 1000, b"hello")
    assert raw.hex() == (
        "1ef1ee0b"
        "0001"
        "3c00"
        "0400"
        "3412"
        "8400"
        "04030201"
        "0200" + b"hello".ljust(32, b"\0").hex() + "e8030000"
        "0001"
        "ff01"
    )
    h = image.parse_header(raw)
    fields = {name: (o, s) for o, s, name in rows}
    for name in (
        "manufacturer_code",
        "image_type",
        "file_version",
        "total_size",
        "hw_min",
        "hw_max",
    ):
        o, s = fields[name]
        assert int.from_bytes(raw[o : o + s], "little") == getattr(h, name), name


def test_documented_constants_match_the_code():
    text = (DOCS / "image-format.md").read_text()
    assert f"pieces of {image.PIECE_SIZE} bytes" in text
    assert f"wbits {image.WBITS}" in text and f"1 .. {image.PIECE_MAX}" in text
    assert f"multiple of {image.SECTOR_SIZE}" in text
    for code in re.findall(r"^\| ([A-Z_]+(?:, [A-Z_]+)*) \|", text, re.M):
        for c in code.split(", "):
            assert c in ERROR_CODES, c


ERROR_CODES = set(
    "BAD_MAGIC BAD_HEADER_VERSION BAD_HEADER_LENGTH BAD_FIELD_CONTROL SIZE_MISMATCH TRUNCATED "
    "TRAILING_DATA TOO_LARGE BAD_MANIFEST WRONG_MANUFACTURER WRONG_IMAGE_TYPE HW_MISMATCH "
    "UNKNOWN_KEY INVALID_SIGNATURE BAD_CHAIN BAD_COMPRESSION BAD_FRAGMENT BAD_DELTA DELTA_BASE".split()
)


def test_parse_header_reads_other_field_controls_and_file_names():
    std = struct.pack("<IHHHHHIH32sI", 0x0BEEF11E, 0x0100, 56, 0, 1, 2, 3, 2, b"", 56)
    h = image.parse_header(std)
    assert h.hw_min is None and h.header_length == 56 and h.total_size == 56
    full = (
        std[:6]
        + struct.pack("<HH", 69, 7)
        + std[10:]
        + b"\x05"
        + bytes(range(8))
        + b"\x01\x00\x02\x00"
    )
    h = image.parse_header(full)
    assert (h.security_credential_version, h.destination, h.hw_min, h.hw_max) == (
        5,
        bytes(range(8)),
        1,
        2,
    )
    assert image.file_name(0x1234, 0x84, 0x01020304) == "1234-0084-01020304.zigbee"
    assert image.file_name(0x1234, 0x84, 0x01020304, 1, 3) == "1234-0084-01020304-2-of-3.zigbee"
    assert image.key_id(bytes(64)) == int.from_bytes(
        __import__("hashlib").sha256(bytes(64)).digest()[:4], "big"
    )


def test_field_indexes_name_the_record_fields():
    # board code reads Header and Manifest by index (plain tuples on a board)
    from otaclient import imagefmt as f

    header = {"H_LENGTH": "header_length", "H_MFR": "manufacturer_code", "H_TYPE": "image_type",
              "H_VERSION": "file_version", "H_TOTAL_SIZE": "total_size", "H_HW_MIN": "hw_min",
              "H_HW_MAX": "hw_max"}  # fmt: skip
    manifest = {"M_MFR": "manufacturer_code", "M_TYPE": "image_type", "M_HW_MIN": "hw_min",
                "M_HW_MAX": "hw_max", "M_VERSION": "file_version", "M_COUNTER": "security_counter",
                "M_KEY_ID": "key_id", "M_PAYLOAD": "payload_length", "M_SHA256": "firmware_sha256",
                "M_COMPRESSED": "compressed", "M_INDEX": "fragment_index",
                "M_COUNT": "fragment_count", "M_OFFSET": "fragment_offset",
                "M_LENGTH": "fragment_length", "M_TOTAL": "total_length",
                "M_CHAIN": "chain_head", "M_DELTA": "delta"}  # fmt: skip
    names = {n for n in vars(f) if n[:2] in ("H_", "M_")}
    assert names == set(header) | set(manifest)
    for table, rec in ((header, f.Header), (manifest, f.Manifest)):
        for name, field in table.items():
            assert rec._fields[getattr(f, name)] == field, name
