"""Key-rotation images (image type 0xFFC0): build the 65-byte records and sign them, parse them.

The records are the board's (otaclient.rotation applies them); which keys a board holds
and which counter it is at are the board's state, not known here: the caller names both.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from otaclient import image
from otaclient.policy import KEYS_IMAGE_TYPE

from ..output import CommandError

if TYPE_CHECKING:  # cryptography is loaded by the commands that sign, not by `hanota`
    from cryptography.hazmat.primitives.asymmetric import ec

RECORD = 65  # op u8 || X (32) || Y (32)
MAX_RECORDS = 16  # the board captures at most 1040 payload bytes (client._KEYS_MAX)
OPS = {1: "add-anchor", 2: "revoke-anchor", 3: "add-authority", 4: "revoke-authority"}
OP_CODES = {name: op for op, name in OPS.items()}


@dataclass(frozen=True)
class Record:
    op: int
    public_key: bytes  # X || Y

    @property
    def key_id(self) -> str:
        return f"{image.key_id(self.public_key):08x}"

    def to_json(self) -> dict[str, str]:
        return {"op": OPS[self.op], "key_id": self.key_id, "public_key": self.public_key.hex()}


def pack(records: list[Record]) -> bytes:
    if not 0 < len(records) <= MAX_RECORDS:
        raise CommandError(f"{len(records)} records: a rotation carries 1..{MAX_RECORDS}")
    return b"".join(bytes([r.op]) + r.public_key for r in records)


def parse(payload: bytes) -> list[Record]:
    """The records of a rotation payload; ValueError saying what is wrong."""
    n = len(payload)
    if not 0 < n <= MAX_RECORDS * RECORD or n % RECORD:
        raise ValueError(f"payload of {n} bytes: want 1..{MAX_RECORDS} records of {RECORD}")
    out = []
    for i in range(0, n, RECORD):
        op = payload[i]
        if op not in OPS:
            raise ValueError(f"record {i // RECORD + 1}: op {op} (want 1..4)")
        out.append(Record(op, bytes(payload[i + 1 : i + RECORD])))
    return out


def records(adds: dict[str, list[Path]]) -> list[Record]:
    """Records from {op name: public key files}, in OPS order (adds before revokes);
    CommandError for a key both added and revoked in one role."""
    from . import keys

    out = [
        Record(OP_CODES[name], keys.raw_public(keys.load_public(p)))
        for name in OPS.values()
        for p in adds.get(name, [])
    ]
    for role in ("anchor", "authority"):
        added = {r.key_id for r in out if OPS[r.op] == f"add-{role}"}
        revoked = {r.key_id for r in out if OPS[r.op] == f"revoke-{role}"}
        if added & revoked:
            raise CommandError(f"key {sorted(added & revoked)[0]} both added and revoked as {role}")
    return out


def build_image(
    recs: list[Record],
    counter: int,
    authority: ec.EllipticCurvePrivateKey,
    manufacturer: int,
    hw_min: int = 0,
    hw_max: int = 0xFFFF,
) -> tuple[str, bytes]:
    """One signed 0xFFC0 file: its file version is the rotation counter the board must be
    one below, the signer a key of the board's current rotation authority."""
    from . import build

    if not 1 <= counter <= 0xFFFFFFFF:
        raise CommandError(f"counter {counter}: want 1..0xFFFFFFFF (the board's counter + 1)")
    target = build.Target(manufacturer, KEYS_IMAGE_TYPE, counter, hw_min, hw_max)
    files = build.build(pack(recs), target, authority)
    assert len(files) == 1  # 1040 bytes at most: never fragmented
    return files[0]
