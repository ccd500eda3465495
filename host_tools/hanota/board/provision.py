"""Provisioning: a board's identity (EUI-64, short address, bound CH, suppliers, device key),
image-signing trust anchors and rotation-authority keys, as store files, plus the device record.

Builds the files and writes them to a directory; pushing them to a board is mpremote's job
(deploy.py). The device private key goes only into the files, never into the record; the
CH link key, shared by the board and its CH, goes into both (the record is then secret).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from otaclient import imagefmt

from ..output import CommandError
from ..paths import BUILD

_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551  # P-256 order
SUPPLIER_RE = re.compile(r"^[\x21-\x7e]{1,16}$")
STORE_FILES = ("identity.json", "trust.json")  # + authority.json when the board has one


@dataclass
class Identity:
    eui64: bytes
    short_addr: int
    ch_addr: int
    suppliers: list[str]
    device_key: bytes
    board: str
    anchors: dict[str, bytes] = field(default_factory=dict)  # key_id hex -> X||Y
    # rotation authority: the only keys that sign key-rotation (0xFFC0) images, never
    # an anchor too (a build server's anchor key must not rewrite the key sets)
    authority: dict[str, bytes] = field(default_factory=dict)
    agent_config: dict[str, Any] | None = None  # agent_config.json (tunables), if any
    link_key: bytes = b""  # the CH link key (docs/link-protocol.md 1.1), 16 bytes

    @property
    def public_key(self) -> bytes:
        return public_key(self.device_key)


def key_id(pub64: bytes) -> str:
    """The board's key id of a public key (X||Y), as 8 hex digits."""
    return f"{imagefmt.key_id(pub64):08x}"


def public_key(priv32: bytes) -> bytes:
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.derive_private_key(int.from_bytes(priv32, "big"), ec.SECP256R1())
    nums = key.public_key().public_numbers()
    return nums.x.to_bytes(32, "big") + nums.y.to_bytes(32, "big")


def new_device_key(seed: str | None) -> bytes:
    """Random P-256 private key; with a seed, a reproducible one (simulated boards only)."""
    if seed is None:
        from cryptography.hazmat.primitives.asymmetric import ec

        value = ec.generate_private_key(ec.SECP256R1()).private_numbers().private_value
    else:
        digest = hashlib.sha256(b"hanota-device-key:" + seed.encode()).digest()
        value = int.from_bytes(digest, "big") % (_N - 1) + 1
    return value.to_bytes(32, "big")


def new_link_key(seed: str | None) -> bytes:
    """The CH link key: 16 random bytes; with a seed, reproducible (simulated boards only)."""
    if seed is None:
        return os.urandom(16)
    return hashlib.sha256(b"hanota-link-key:" + seed.encode()).digest()[:16]


def parse_eui64(text: str) -> bytes:
    hexd = re.sub(r"[:\-\s]", "", text.lower().removeprefix("0x"))
    if not re.fullmatch(r"[0-9a-f]{16}", hexd):
        raise CommandError(f"EUI-64 must be 16 hex digits (8 bytes), got {text!r}")
    return bytes.fromhex(hexd)


def new_eui64(seed: str | None) -> bytes:
    """A locally administered unicast EUI-64 (random, or from a seed)."""
    raw = hashlib.sha256(b"hanota-eui64:" + seed.encode()).digest() if seed else os.urandom(8)
    return bytes([(raw[0] & 0xFC) | 0x02]) + raw[1:8]


def load_anchor(path: Path) -> bytes:
    """A manufacturer trust anchor: PEM public (or private) key, or 64 raw bytes / 128 hex."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CommandError(f"trust anchor {path}: {exc.strerror}") from exc
    if b"-----BEGIN" in data:
        try:
            key: Any = serialization.load_pem_public_key(data)
        except ValueError:
            key = serialization.load_pem_private_key(data, password=None).public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
            raise CommandError(f"trust anchor {path}: not a P-256 key")
        nums = key.public_numbers()
        return nums.x.to_bytes(32, "big") + nums.y.to_bytes(32, "big")
    text = data.strip()
    if len(data) == 64:
        return data
    if re.fullmatch(rb"[0-9a-fA-F]{128}", text):
        return bytes.fromhex(text.decode())
    raise CommandError(f"trust anchor {path}: expected a PEM key, 64 raw bytes or 128 hex digits")


def make_identity(
    board: dict[str, Any],
    *,
    eui64: str | None = None,
    seed: str | None = None,
    short_addr: int = 1,
    ch_addr: int = 0,
    suppliers: list[str] | None = None,
    anchors: list[Path] | None = None,
    authority: list[Path] | None = None,
) -> Identity:
    if not 0x0001 <= short_addr <= 0xFFF7:
        raise CommandError(f"short address {short_addr:#06x} outside 0x0001..0xFFF7")
    if not 0 <= ch_addr <= 0xFFF7:
        raise CommandError(f"CH address {ch_addr:#06x} outside 0x0000..0xFFF7")
    sups = suppliers or ["supplier-a"]
    for s in sups:
        if not SUPPLIER_RE.match(s):
            raise CommandError(f"supplier id {s!r}: 1..16 printable ASCII characters")
    keys = _load_keys(anchors)
    auth = _load_keys(authority)
    both = sorted(set(keys) & set(auth))
    if both:
        raise CommandError(f"key {both[0]} is given as a trust anchor and as a rotation "
                           "authority: an image-signing key must not also rotate keys")  # fmt: skip
    return Identity(
        eui64=parse_eui64(eui64) if eui64 else new_eui64(seed),
        short_addr=short_addr,
        ch_addr=ch_addr,
        suppliers=list(dict.fromkeys(sups)),
        device_key=new_device_key(seed),
        board=board["name"],
        anchors=keys,
        authority=auth,
        link_key=new_link_key(seed),
    )


def _load_keys(paths: list[Path] | None) -> dict[str, bytes]:
    keys = {}
    for p in paths or []:
        pub = load_anchor(Path(p))
        keys[key_id(pub)] = pub
    return keys


def store_files(ident: Identity) -> dict[str, bytes]:
    """identity.json and trust.json (+ authority.json and agent_config.json when the
    identity carries them), byte for byte as the board stores them."""
    identity = {
        "eui64": ident.eui64.hex(),
        "short_addr": ident.short_addr,
        "ch_addr": ident.ch_addr,
        "suppliers": ident.suppliers,
        "device_key": ident.device_key.hex(),
        "board": ident.board,
        "link_key": ident.link_key.hex(),
    }
    trust = {kid: pub.hex() for kid, pub in ident.anchors.items()}
    out = {
        "identity.json": json.dumps(identity).encode(),
        "trust.json": json.dumps(trust).encode(),
    }
    if ident.authority:
        out["authority.json"] = json.dumps(
            {k: p.hex() for k, p in ident.authority.items()}
        ).encode()
    if ident.agent_config is not None:
        out["agent_config.json"] = json.dumps(ident.agent_config).encode()
    return out


def device_record(ident: Identity, board: dict[str, Any]) -> dict[str, Any]:
    """What the hub enrols: no private key; the CH link key, which the hub shares."""
    pub = ident.public_key
    return {
        "eui64": ident.eui64.hex(),
        "board": ident.board,
        "suppliers": ident.suppliers,
        "short_addr": ident.short_addr,
        "ch_addr": ident.ch_addr,
        "public_key": pub.hex(),
        "key_id": key_id(pub),
        "manufacturer_code": board["manufacturer_code"],
        "image_type": board["image_type"],
        "hw_version": board["hw_version"],
        "trust": sorted(ident.anchors),
        "authority": sorted(ident.authority),
        "link_key": ident.link_key.hex(),
    }


def write_dir(directory: Path, files: dict[str, bytes]) -> None:
    """Write each file atomically (tmp + rename), as the board's store does."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        tmp = directory / (name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, directory / name)


def default_record_path(ident: Identity) -> Path:
    return BUILD / "devices" / f"{ident.eui64.hex()}.json"


def write_record(path: Path, record: dict[str, Any]) -> None:
    """The record, readable by its owner only: it holds the CH link key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, path)


def dev_trust_anchor() -> Path:
    """The development manufacturer key (build/keys/dev-manufacturer.pem), made on first use,
    so `make flash` works out of the box. Real boards are given --trust explicitly."""
    path = BUILD / "keys" / "dev-manufacturer.pem"
    if not path.exists():
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pem)
        path.chmod(0o600)
    return path
