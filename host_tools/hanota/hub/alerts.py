"""Supplier alerts (R3): one per supplier and device, never grouped, staggered in time.

Also checks a device's signed ACTIVATION_ALERT against its enrolled key (otaclient.p256)
and packs it for suppliers to check themselves (`verify_signed`, with `cryptography`).
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
    "alert-gap",
)
CCS08_SUCCESS = 0x8F8A
CCS08_FAILURE = 0x8F89
REASON_DISCARDED = 1
REASON_HW_MISMATCH = 2
REASON_TRANSFER = 3
ACTIVATION_RESULTS = ("success", "failure", "refused", "deferred")
GAP_REASON = ("the device's signed alert counters skipped these: alerts it sent that never "
              "reached this hub (lost, or acknowledged by someone else on the link)")  # fmt: skip
SCHEME = ("ECDSA P-256 over SHA-256(signed_bytes); signature r||s (2 x 32 bytes, big-endian); "
          "public_key X||Y (2 x 32 bytes)")  # fmt: skip
LAYOUT = ("eui64[8] alert_code<u16le> supplier_len<u8> supplier[supplier_len] version<u32le> "
          "result<u8> device_time<u32le> counter<u32le>")  # fmt: skip


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


def signed_record(eui64: str, public_key: bytes, payload: bytes) -> dict[str, Any]:
    """The device's signature and the exact bytes it signed, for a supplier to check
    itself against the device key it got from the manufacturer (not from this hub)."""
    body, sig = payload[: -zcl.SIGNATURE_LEN], payload[-zcl.SIGNATURE_LEN :]
    return {"signed_bytes": zcl.alert_signed_bytes(bytes.fromhex(eui64), body).hex(),
            "signature": bytes(sig).hex(), "public_key": public_key.hex(), "scheme": SCHEME,
            "layout": LAYOUT}  # fmt: skip


def verify_signed(alert: dict[str, Any], public_key: bytes) -> dict[str, Any]:
    """A supplier's check of a forwarded `activation` alert: the signature (with the
    `cryptography` package, not the hub's verifier) under `public_key` (64 bytes X||Y),
    and every field the hub shows equal to the signed one. Returns the signed fields;
    ValueError says what is wrong."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    signed = alert.get("signed") or {}
    try:
        data, sig = bytes.fromhex(signed["signed_bytes"]), bytes.fromhex(signed["signature"])
    except (KeyError, TypeError, ValueError):
        raise ValueError("no signed record in this alert") from None
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + public_key)
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    try:
        key.verify(der, data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise ValueError("signature does not verify under this device key") from None
    a = zcl.decode_activation_alert(data[8:] + sig)
    got = {"device": data[:8].hex(), "supplier": a.supplier, "counter": a.counter,
           "result": ACTIVATION_RESULTS[a.result] if a.result < 4 else str(a.result),
           "version": None if a.version == 0xFFFFFFFF else a.version,
           "device_time": a.timestamp, "alert_code": a.alert_code}  # fmt: skip
    for k, v in got.items():
        if k in alert and alert[k] != v:
            raise ValueError(f"{k}: the hub shows {alert[k]!r}, the device signed {v!r}")
    return got


def counter_ranges(missing: list[list[int]], gap: list[int] | None, got: int) -> list[list[int]]:
    """Missing alert counters as sorted [lo, hi] ranges: add `gap` ([lo, hi]), then take
    out `got` (a counter received, perhaps late). Ranges, not sets: a counter may jump."""
    out = [list(r) for r in missing] + ([list(gap)] if gap else [])
    res: list[list[int]] = []
    for lo, hi in sorted(out):
        parts = [[lo, got - 1], [got + 1, hi]] if lo <= got <= hi else [[lo, hi]]
        res += [p for p in parts if p[0] <= p[1]]
    return res
