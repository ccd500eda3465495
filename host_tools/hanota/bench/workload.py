"""Inputs shared by the families: a signing key, realistic firmware bytes, signed OTA files.

Firmware content is the sim app's pad asset (deterministic, compresses like firmware).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec
from otaclient import image

from hanota.image import build
from hanota.image.keys import generate, raw_public
from hanota.sim.appimage import pad_data

MFR, ITYPE, HW = 0x1234, 0x0084, 0x0100  # sim-ppmid


@lru_cache(maxsize=1)
def key() -> ec.EllipticCurvePrivateKey:
    return generate()


def pub() -> bytes:
    return raw_public(key().public_key())


def firmware(n: int) -> bytes:
    return pad_data(n)


def ota_files(payload: bytes, version: int = 0x01000001, *, compress: bool = False,
              max_size: int = image.MAX_FILE, itype: int = ITYPE) -> list[bytes]:  # fmt: skip
    t = build.Target(MFR, itype, version, HW, HW)
    return [
        data for _n, data in build.build(payload, t, key(), compress=compress, max_size=max_size)
    ]


def write_files(dirpath: Path, files: list[bytes], stem: str) -> list[Path]:
    out = []
    for i, data in enumerate(files):
        p = dirpath / f"{stem}-{i}.ota"
        p.write_bytes(data)
        out.append(p)
    return out
