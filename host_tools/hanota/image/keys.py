"""P-256 keys as PEM files: generate, load, export, raw forms, signing (via `cryptography`)."""

from __future__ import annotations

from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from ..output import CommandError


def generate() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_pem(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _read(path: str | Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise CommandError(f"{what} {path}: no such file") from None
    except OSError as exc:
        raise CommandError(f"{what} {path}: {exc.strerror}") from None


def _check_p256(key: object, path: str | Path, what: str) -> None:
    curve = getattr(key, "curve", None)
    if not isinstance(curve, ec.SECP256R1):
        raise CommandError(f"{what} {path}: not a P-256 (secp256r1) EC key")


def load_private(path: str | Path) -> ec.EllipticCurvePrivateKey:
    """A P-256 private key from a PEM file, or a CommandError saying what is wrong."""
    data = _read(path, "private key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise CommandError(f"private key {path}: encrypted keys are not supported") from None
    except (ValueError, UnsupportedAlgorithm):
        raise CommandError(f"private key {path}: not a PEM private key") from None
    _check_p256(key, path, "private key")
    return key  # type: ignore[return-value]


def load_public(path: str | Path) -> ec.EllipticCurvePublicKey:
    """A P-256 public key from a PEM file (a private key file is accepted too)."""
    data = _read(path, "public key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        if b"PRIVATE KEY" in data:
            return load_private(path).public_key()
        raise CommandError(f"public key {path}: not a PEM public key") from None
    _check_p256(key, path, "public key")
    return key  # type: ignore[return-value]


def raw_public(key: ec.EllipticCurvePublicKey) -> bytes:
    """64 bytes X || Y, big-endian."""
    point = key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return point[1:]


def sign_raw(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    """ECDSA P-256/SHA-256 over data, as raw r || s (64 bytes)."""
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")
