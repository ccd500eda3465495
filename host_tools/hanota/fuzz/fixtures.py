"""Signed OTA files the fuzz targets trust: a fixed throwaway key, small firmwares, fragments.

Built with the image tool's own builder (`hanota.image.build.build`), then re-signed with
`otaclient.p256.sign` (RFC 6979) so the committed seed corpus is byte-for-byte
reproducible. The key is public on purpose: it signs nothing but fuzz fixtures.
"""

from __future__ import annotations

import functools
import hashlib
import random
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec
from otaclient import image, p256

from hanota.image.build import Target, build

PRIV = hashlib.sha256(b"hanota fuzz fixture key: never trust it").digest()
SUPPLIER_PRIV = hashlib.sha256(b"hanota fuzz supplier key: never trust it").digest()
MFR, IMAGE_TYPE, HW = 0x1234, 0x0101, 0x0200


@dataclass(frozen=True)
class Fragment:
    """One signed OTA file and what it must deliver."""

    name: str
    data: bytes
    firmware: bytes  # the whole firmware this file is a fragment of
    version: int


@functools.cache
def public_key() -> bytes:
    return p256.public_key(PRIV)


@functools.cache
def key_id() -> int:
    return image.key_id(public_key())


def lookup_key(kid: int) -> bytes | None:
    """The verifier's lookup: only the fixture key is trusted."""
    return public_key() if kid == key_id() else None


def firmware(size: int, seed: int) -> bytes:
    """Deterministic firmware: compressible text runs mixed with random bytes."""
    rng = random.Random(seed)
    out = bytearray()
    while len(out) < size:
        if rng.random() < 0.5:
            out += b"hanota firmware %08x " % rng.getrandbits(32) * rng.randint(1, 8)
        else:
            out += rng.randbytes(rng.randint(16, 300))
    return bytes(out[:size])


def _signing_key(priv: bytes) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int.from_bytes(priv, "big"), ec.SECP256R1())


def _resign(data: bytes, trailer: bool) -> bytes:
    # cryptography's ECDSA nonces are random: swap in deterministic RFC 6979 signatures
    signed = data[: image.SIGNED_END]
    out = signed + p256.sign(PRIV, hashlib.sha256(signed).digest())
    if trailer:
        out += image.SUPPLIER_TAG + p256.sign(SUPPLIER_PRIV, hashlib.sha256(out).digest())
    return out + data[len(out) :]


def files(
    fw: bytes, version: int, *, compress: bool = False, max_size: int = 0, supplier: bool = False
) -> list[Fragment]:
    """The signed fragment files of `fw` (one file when max_size is 0)."""
    target = Target(MFR, IMAGE_TYPE, version, HW, HW + 0x10, security_counter=version & 0xFF)
    built = build(
        fw,
        target,
        _signing_key(PRIV),
        compress=compress,
        max_size=max_size or image.MAX_FILE,
        supplier_key=_signing_key(SUPPLIER_PRIV) if supplier else None,
    )
    return [Fragment(name, _resign(data, supplier), fw, version) for name, data in built]


# one sector of firmware per fragment file (uncompressed): its chunks with their links,
# header, manifest, signature
_PER_SECTOR = (
    image.SECTOR_SIZE
    + image.SECTOR_SIZE // image.CHUNK_SIZE * image.LINK_SIZE
    + image.SIGNED_END
    + image.SIG_SIZE
)


@functools.cache
def parser_files() -> tuple[Fragment, ...]:
    """Small files for the image parser: plain, fragmented, compressed, supplier trailer."""
    fw = firmware(6000, 1)
    out = files(fw, 0x01000001)
    out += files(fw, 0x01000001, max_size=_PER_SECTOR)
    out += files(fw, 0x01000001, compress=True)
    out += files(fw, 0x01000001, compress=True, supplier=True)
    return tuple(out)


@functools.cache
def reassembly_sets() -> tuple[tuple[Fragment, ...], ...]:
    """Fragment sets for the reassembly target, in this order:
    0: v2 in 4 fragments, 1: v2 compressed (other cut), 2: v3 in 2 fragments, 3: v1 whole."""
    a = firmware(3 * image.SECTOR_SIZE + 1000, 2)
    b = firmware(2 * image.SECTOR_SIZE + 500, 3)
    return (
        tuple(files(a, 0x01000002, max_size=_PER_SECTOR)),
        tuple(files(a, 0x01000002, compress=True, max_size=_PER_SECTOR)),
        tuple(files(b, 0x01000003, max_size=2 * _PER_SECTOR)),
        tuple(files(firmware(5000, 4), 0x01000001)),
    )


@functools.cache
def reassembly_files() -> tuple[Fragment, ...]:
    return tuple(f for group in reassembly_sets() for f in group)


def signed_digest(data: bytes) -> bytes:
    """SHA-256 of what the manufacturer signature covers (header and manifest, whose
    chain head binds the payload)."""
    return hashlib.sha256(data[: image.SIGNED_END]).digest()


@functools.cache
def known_signed() -> dict[bytes, Fragment]:
    """Every file the fixture key ever signed, by signed digest."""
    return {signed_digest(f.data): f for f in parser_files() + reassembly_files()}
