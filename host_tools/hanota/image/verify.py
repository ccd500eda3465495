"""Verify OTA files with the board's own verifier, then check fragments form one firmware."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature
from otaclient import image


@dataclass
class FileResult:
    name: str
    code: str | None = None  # None: valid
    detail: str = ""
    manifest: image.Manifest | None = None
    parts: list[tuple[int, bytes]] = field(default_factory=list)

    def line(self) -> str:
        if self.code:
            return f"{self.name}: {self.code} {self.detail}".rstrip()
        m = self.manifest
        assert m is not None
        end = m.fragment_offset + m.fragment_length
        return f"{self.name}: OK fragment {m.fragment_index + 1}/{m.fragment_count} [{m.fragment_offset}, {end})"


def _supplier_ok(v: image.Verifier, pub: ec.EllipticCurvePublicKey) -> bool:
    if v.supplier_signature is None:
        return False
    sig = v.supplier_signature
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    try:
        pub.verify(der, v.supplier_digest, ec.ECDSA(Prehashed(hashes.SHA256())))
    except InvalidSignature:
        return False
    return True


def verify_file(
    name: str,
    data: bytes,
    keys: dict[int, bytes],
    check: Callable | None = None,
    supplier: ec.EllipticCurvePublicKey | None = None,
    max_size: int = image.MAX_FILE,
) -> FileResult:
    """Stream one file through otaclient.image.Verifier; collect its firmware bytes."""
    res = FileResult(name)
    v = image.Verifier(
        keys.get, lambda off, mv: res.parts.append((off, bytes(mv))), check, max_size
    )
    try:
        v.feed(data)
        res.manifest = v.finish()
        if supplier is not None and not _supplier_ok(v, supplier):
            raise image.ImageError("INVALID_SIGNATURE", "supplier signature missing or wrong")
    except image.ImageError as exc:
        res.code, res.detail, res.manifest, res.parts = exc.code, exc.detail, None, []
    return res


def _identity(m: image.Manifest) -> tuple:
    return (
        m.manufacturer_code,
        m.image_type,
        m.file_version,
        m.firmware_sha256,
        m.total_length,
        m.fragment_count,
    )


def check_set(results: list[FileResult]) -> list[str]:
    """Problems (one line each) keeping valid files from forming one complete firmware."""
    first = results[0].manifest
    assert first is not None
    lines, seen = [], {}
    for r in results:
        m = r.manifest
        assert m is not None
        if _identity(m) != _identity(first):
            lines.append(f"{r.name}: BAD_FRAGMENT from another image than {results[0].name}")
        elif m.fragment_index in seen:
            lines.append(f"{r.name}: BAD_FRAGMENT duplicate of {seen[m.fragment_index].name}")
        else:
            seen[m.fragment_index] = r
    for k in range(first.fragment_count):
        if k not in seen:
            name = image.file_name(
                first.manufacturer_code,
                first.image_type,
                first.file_version,
                k,
                first.fragment_count,
            )
            lines.append(f"{name}: BAD_FRAGMENT missing fragment {k + 1} of {first.fragment_count}")
    if not lines:
        lines = _check_assembly([seen[k] for k in range(first.fragment_count)], first)
    return lines


def _check_assembly(ordered: list[FileResult], first: image.Manifest) -> list[str]:
    fw = bytearray(first.total_length)
    end = 0
    for r in ordered:
        m = r.manifest
        assert m is not None
        if m.fragment_offset != end:
            return [f"{r.name}: BAD_FRAGMENT offset {m.fragment_offset}, expected {end}"]
        for off, chunk in r.parts:
            fw[off : off + len(chunk)] = chunk
        end = m.fragment_offset + m.fragment_length
    if hashlib.sha256(fw).digest() != first.firmware_sha256:
        return [
            f"{ordered[0].name}: BAD_FRAGMENT assembled firmware does not match firmware_sha256"
        ]
    return []


def check_delta(ordered: list[FileResult], base: bytes | None) -> tuple[list[str], bool]:
    """For a verified delta file: a line on its descriptor, and with `base`, the patch
    applied to it (the target's length and SHA-256 checked); False when that failed.
    No lines for a full image."""
    from .delta import DeltaError, apply, parse_descriptor

    m = ordered[0].manifest
    if m is None or not m.delta:
        return [], True
    patch = b"".join(chunk for r in ordered for _, chunk in r.parts)
    name = ordered[0].name
    try:
        d = parse_descriptor(patch)
        line = (f"{name}: delta from base v{d.base_version:08x} ({d.base_length} bytes) to "
                f"{d.target_length} bytes")  # fmt: skip
        if base is None:
            return [line + " (no --base given: not applied)"], True
        apply(base, patch)
    except DeltaError as exc:
        return [f"{name}: BAD_DELTA {exc}"], False
    return [line + ", applied to the base: target SHA-256 OK"], True
