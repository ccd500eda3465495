"""Describe an OTA file: header, manifest, signatures and payload chain, or ZigBee sub-elements."""

from __future__ import annotations

import struct
from typing import Any

from otaclient import image

# JSON keys of manifest-only fields (None in a file that is not ours)
_MANIFEST_KEYS = (
    "format_version",
    "security_counter",
    "key_id",
    "payload_length",
    "firmware_sha256",
    "compressed",
    "fragment_index",
    "fragment_count",
    "fragment_offset",
    "fragment_length",
    "total_length",
    "chain_head",
    "signature",
    "signed_range",
    "supplier_signature",
    "supplier_signed_range",
    "payload_range",
    "chunks",
    "delta",
)


def describe(data: bytes) -> dict[str, Any]:
    """Every header and manifest field of an OTA file; ImageError if it cannot be parsed."""
    h = image.parse_header(data)
    doc: dict[str, Any] = {
        "file_size": len(data),
        "magic": h.magic,
        "header_version": h.header_version,
        "header_length": h.header_length,
        "field_control": h.field_control,
        "manufacturer_code": h.manufacturer_code,
        "image_type": h.image_type,
        "file_version": h.file_version,
        "stack_version": h.stack_version,
        "header_string": h.header_string.decode("latin-1"),
        "total_image_size": h.total_size,
        "security_credential_version": h.security_credential_version,
        "upgrade_file_destination": h.destination.hex() if h.destination else None,
        "hw_min": h.hw_min,
        "hw_max": h.hw_max,
    }
    doc.update(dict.fromkeys(_MANIFEST_KEYS))
    body = data[h.header_length :]
    if h.field_control == image.FIELD_CONTROL and body[:4] == image.MANIFEST_MAGIC:
        doc["format"] = "hanota"
        doc.update(_manifest(data, h))
    else:
        doc["format"] = "zigbee-sub-elements"
        doc["sub_elements"] = sub_elements(data, h.header_length)
    return doc


def _manifest(data: bytes, h: image.Header) -> dict[str, Any]:
    m = image.parse_manifest(data[h.header_length :], h)
    doc = m._asdict()
    doc["firmware_sha256"] = m.firmware_sha256.hex()
    doc["chain_head"] = m.chain_head.hex()
    sig_at = image.SIGNED_END
    end = sig_at + image.SIG_SIZE
    if len(data) < end:
        raise image.ImageError("TRUNCATED", f"{len(data)} bytes, signature ends at {end}")
    doc["signature"] = data[sig_at:end].hex()
    doc["signed_range"] = [0, sig_at]
    if h.total_size - end - m.payload_length == image.TRAILER_SIZE:
        part = data[end : end + image.TRAILER_SIZE]
        if len(part) == image.TRAILER_SIZE and part[:2] == image.SUPPLIER_TAG:
            doc["supplier_signature"] = part[2:].hex()
            doc["supplier_signed_range"] = [0, end]
        end += image.TRAILER_SIZE
    doc["payload_range"] = [end, end + m.payload_length]
    doc["chunks"] = _chunks(m)
    doc["delta"] = _delta(data, end, m)
    return doc


def _delta(data: bytes, payload_at: int, m: image.Manifest) -> dict[str, Any] | None:
    """A delta file's descriptor (what it was made from and makes); None for a full image."""
    if not m.delta:
        return None
    from .delta import DeltaError, first_bytes, parse_descriptor

    try:
        return parse_descriptor(first_bytes(data, payload_at, m.compressed)).json()
    except DeltaError as exc:
        return {"error": str(exc)}


def _chunks(m: image.Manifest) -> int:
    """Chunks in the payload's hash chain: one per CHUNK_SIZE firmware bytes, or per
    compressed piece (`image verify` checks each against its link)."""
    if m.compressed:
        return -(-m.fragment_length // image.PIECE_SIZE)
    return -(-m.fragment_length // image.CHUNK_SIZE)


def sub_elements(data: bytes, start: int) -> list[dict[str, Any]]:
    """Tag/length/offset of each ZigBee sub-element (tag u16, length u32, data)."""
    out = []
    off = start
    while off + 6 <= len(data):
        tag, length = struct.unpack_from("<HI", data, off)
        out.append(
            {
                "tag": tag,
                "length": length,
                "offset": off + 6,
                "truncated": off + 6 + length > len(data),
            }
        )
        off += 6 + length
    if off < len(data):
        out.append({"tag": None, "length": len(data) - off, "offset": off, "truncated": True})
    return out


_HEX = {
    "magic": 8,
    "field_control": 4,
    "manufacturer_code": 4,
    "image_type": 4,
    "file_version": 8,
    "stack_version": 4,
    "hw_min": 4,
    "hw_max": 4,
    "key_id": 8,
}


def text_lines(doc: dict[str, Any]) -> list[str]:
    """The human form: one `name: value` line per field that has a value."""
    lines = []
    for name, value in doc.items():
        if value is None:
            continue
        if name == "delta":
            lines += [f"delta.{k}: {v}" for k, v in value.items()]
            continue
        if name == "sub_elements":
            for el in value:
                tag = "junk" if el["tag"] is None else f"0x{el['tag']:04x}"
                cut = " (truncated)" if el["truncated"] else ""
                lines.append(f"sub_element: tag {tag} length {el['length']} at {el['offset']}{cut}")
            continue
        if name in _HEX and isinstance(value, int):
            value = f"0x{value:0{_HEX[name]}x}"
        lines.append(f"{name}: {value}")
    return lines
