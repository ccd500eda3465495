"""CPython helpers for agent tests: keys, provisioning store contents, signed image files."""

from __future__ import annotations

import json

from hanota.image.build import Target, build
from hanota.image.keys import generate, raw_public
from harness import BOARD
from otaclient import image, p256

MFR, ITYPE, HW = BOARD["manufacturer_code"], BOARD["image_type"], BOARD["hw_version"]
V1 = 0x01000000
DEVICE_PRIV = bytes(range(1, 33))
EUI64 = bytes.fromhex("00124b00a1b2c3d4")
SUPPLIERS = ["supplier-a", "supplier-b"]

_KEY = None


def mkey():
    """The manufacturer signing key (one per test session: P-256 keygen is cheap anyway)."""
    global _KEY
    if _KEY is None:
        _KEY = generate()
    return _KEY


def kid_hex(key) -> str:
    return f"{image.key_id(raw_public(key.public_key())):08x}"


def store(key=None, extra: dict | None = None) -> dict:
    """identity.json + trust.json as `hanota board provision` writes them, plus extras."""
    key = key or mkey()
    ident = {
        "eui64": EUI64.hex(),
        "short_addr": 1,
        "ch_addr": 0,
        "suppliers": SUPPLIERS,
        "device_key": DEVICE_PRIV.hex(),
        "board": "fake",
    }
    d = {
        "identity.json": json.dumps(ident).encode(),
        "trust.json": json.dumps({kid_hex(key): raw_public(key.public_key()).hex()}).encode(),
    }
    for name, obj in (extra or {}).items():
        d[name] = json.dumps(obj).encode()
    return d


def device_pub() -> bytes:
    return p256.public_key(DEVICE_PRIV)


def images(
    payload: bytes,
    version: int,
    *,
    key=None,
    max_size: int = image.MAX_FILE,
    counter: int = 0,
    mfr: int = MFR,
    itype: int = ITYPE,
    hw=(HW, HW),
    compress: bool = False,
    supplier_key=None,
) -> list[bytes]:
    """The OTA files of `payload`, fragment order."""
    t = Target(mfr, itype, version, hw[0], hw[1], counter)
    files = build(
        payload,
        t,
        key or mkey(),
        compress=compress,
        max_size=max_size,
        supplier_key=supplier_key,
    )
    return [data for _name, data in files]
