"""Supplier alerts (R3): one per supplier and device, never grouped, staggered in time.

Also checks a device's signed ACTIVATION_ALERT against its enrolled key (otaclient.p256).
"""

from __future__ import annotations

import hashlib
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from otaclient import p256, zcl

KINDS = (
    "submission-processed",
    "transfer-success",
    "transfer-failure",
    "activation",
    "version-confirmation",
    "conflict",
)
CCS08_SUCCESS = 0x8F8A
CCS08_FAILURE = 0x8F89
REASON_DISCARDED = 1
REASON_HW_MISMATCH = 2
REASON_TRANSFER = 3
ACTIVATION_RESULTS = ("success", "failure", "refused", "deferred")


def iso(t: float) -> str:
    """Unix seconds as an ISO-8601 UTC string with milliseconds."""
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Alert:
    """One alert to one supplier about one device. `at` is set when it is raised."""

    id: str
    supplier: str
    kind: str
    device: str
    version: int | None
    due: float
    fields: dict[str, Any] = field(default_factory=dict)
    at: float | None = None

    def to_json(self) -> dict[str, Any]:
        doc = {
            "id": self.id,
            "supplier": self.supplier,
            "kind": self.kind,
            "device": self.device,
            "version": self.version,
            "at": iso(self.at) if self.at is not None else None,
            "t": self.at,
            "due": self.due,
        }
        doc.update(self.fields)
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Alert:
        base = ("id", "supplier", "kind", "device", "version", "due", "at", "t")
        return cls(
            id=doc["id"],
            supplier=doc["supplier"],
            kind=doc["kind"],
            device=doc["device"],
            version=doc.get("version"),
            due=doc["due"],
            fields={k: v for k, v in doc.items() if k not in base},
            at=doc.get("t"),
        )


class Stagger:
    """Spreads alert due times: base delay + uniform jitter in [0, spread] seconds."""

    def __init__(self, spread: float = 0.0, seed: int | None = None):
        self.spread = spread
        self._rng = random.Random(seed)

    def due(self, base: float | None = None) -> float:
        t = time.time() if base is None else base
        return t + (self._rng.uniform(0, self.spread) if self.spread > 0 else 0.0)


def check_activation_alert(eui64: str, public_key: bytes, payload: bytes) -> bool:
    """True if the alert payload's signature is the device key's over eui64 || body."""
    if len(payload) <= zcl.SIGNATURE_LEN:
        return False
    body, sig = payload[: -zcl.SIGNATURE_LEN], payload[-zcl.SIGNATURE_LEN :]
    signed = zcl.alert_signed_bytes(bytes.fromhex(eui64), body)
    try:
        return bool(p256.verify(public_key, hashlib.sha256(signed).digest(), sig))
    except (ValueError, TypeError):
        return False
