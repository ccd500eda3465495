"""Enrolled devices (from provisioning's device record) and what the hub knows of each.

Pure data and bookkeeping; the protocol decisions are core.Hub's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from . import linkkeys

_HEX16 = re.compile(r"^[0-9a-f]{16}$")
_HEX128 = re.compile(r"^[0-9a-f]{128}$")
_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_HEX8 = re.compile(r"^[0-9a-f]{8}$")
BOOT_STATUS = ("normal", "activated", "rolled-back", "refused")
UNKNOWN_VERSION = 0xFFFFFFFF  # what a device announces (or signs) when it cannot tell


def known(version: int | None) -> int | None:
    """A version as shown: None for "unknown" (0xFFFFFFFF, a stock build), never a number."""
    return None if version is None or version == UNKNOWN_VERSION else version


class EnrolError(ValueError):
    """A device record the hub cannot use; str() says which field."""


@dataclass
class DeviceRecord:
    """The enrolment: who the device is and which suppliers it serves."""

    eui64: str
    public_key: bytes
    board: str
    suppliers: list[str]
    short_addr: int
    manufacturer_code: int | None = None
    image_type: int | None = None
    hw_version: int | None = None
    link_key_id: str | None = None  # of its CH link key (linkkeys.py); None: enrolled without

    def to_json(self) -> dict[str, Any]:
        return {
            "eui64": self.eui64,
            "public_key": self.public_key.hex(),
            "board": self.board,
            "suppliers": list(self.suppliers),
            "short_addr": self.short_addr,
            "manufacturer_code": self.manufacturer_code,
            "image_type": self.image_type,
            "hw_version": self.hw_version,
            "link_key_id": self.link_key_id,
        }


def parse_record(doc: Any) -> DeviceRecord:
    """Check a device record (docs/architecture.md) and return it; EnrolError on a bad field."""
    if not isinstance(doc, dict):
        raise EnrolError("device record must be a JSON object")
    eui = str(doc.get("eui64", "")).lower()
    if not _HEX16.match(eui):
        raise EnrolError(f"eui64 {doc.get('eui64')!r}: want 16 hex digits")
    key = str(doc.get("public_key", "")).lower()
    if not _HEX128.match(key):
        raise EnrolError(f"{eui}: public_key: want 128 hex digits (X||Y)")
    sup = doc.get("suppliers")
    if not isinstance(sup, list) or not sup or not all(_supplier_ok(s) for s in sup):
        raise EnrolError(f"{eui}: suppliers: want a list of 1..16-char ASCII ids")
    short = doc.get("short_addr")
    if not isinstance(short, int) or not 0x0001 <= short <= 0xFFF7:
        raise EnrolError(f"{eui}: short_addr {short!r}: want 0x0001..0xFFF7")
    ints = {k: doc.get(k) for k in ("manufacturer_code", "image_type", "hw_version")}
    for k, v in ints.items():
        if v is not None and (not isinstance(v, int) or not 0 <= v <= 0xFFFF):
            raise EnrolError(f"{eui}: {k} {v!r}: want an integer 0..0xFFFF")
    key_id = doc.get("link_key_id")
    lk = link_key(doc)
    if lk is not None:
        key_id = linkkeys.key_id(lk)
    elif key_id is not None and not (isinstance(key_id, str) and _HEX8.match(key_id)):
        raise EnrolError(f"{eui}: link_key_id {key_id!r}: want 8 hex digits")
    return DeviceRecord(
        eui64=eui,
        public_key=bytes.fromhex(key),
        board=str(doc.get("board", "")),
        suppliers=list(sup),
        short_addr=short,
        **ints,
        link_key_id=key_id,
    )


def link_key(doc: dict[str, Any]) -> bytes | None:
    """The CH link key a provisioning record carries (`link_key`, 32 hex digits), None
    if it has none (a board provisioned before link keys: unsealed, development only)."""
    raw = doc.get("link_key")
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str) or not _HEX32.match(raw.lower()):
        raise EnrolError(f"{doc.get('eui64')}: link_key: want 32 hex digits (16 bytes)")
    return bytes.fromhex(raw)


def _supplier_ok(s: Any) -> bool:
    return isinstance(s, str) and 1 <= len(s) <= 16 and s.isascii() and s.isprintable()


@dataclass
class DeviceState:
    """Everything the hub knows of one device; `to_json` is the inventory entry.

    `version` is what the device's signed activation alerts vouch for (None until one
    says); what it announces or asks with is unauthenticated and kept apart (`claimed`).
    """

    record: DeviceRecord
    version: int | None = None  # running version from its last signed success/failure alert
    evidence: dict[str, Any] | None = None  # that alert: counter, result, device_time, t
    claimed: dict[str, Any] | None = None  # last announce/query: version, hw, boot, source, t
    link: str | None = None
    connected: bool = False
    transfer: str | None = None  # id of the submission in progress on this device
    queue: list[str] = field(default_factory=list)  # submissions waiting their turn (R2)
    history: list[dict[str, Any]] = field(default_factory=list)
    last_counter: int = 0  # highest activation alert counter received (signed)
    counters: set[int] = field(default_factory=set)  # every signed counter received
    missing: list[list[int]] = field(default_factory=list)  # [lo, hi] counters never received

    @property
    def announced_version(self) -> int | None:
        """The version the device last announced or queried with: unauthenticated, a hint
        (None if it said none, or said 0xFFFFFFFF: unknown)."""
        return known(self.claimed.get("version")) if self.claimed else None

    @property
    def hw_version(self) -> int | None:
        """The enrolled hardware version; the claimed one only when none is enrolled."""
        if self.record.hw_version is not None:
            return self.record.hw_version
        return self.claimed.get("hw_version") if self.claimed else None

    def to_json(self, transfer: dict[str, Any] | None) -> dict[str, Any]:
        rec, c = self.record, self.claimed
        boot = c.get("boot_status") if c else None
        announced = None
        if c is not None:
            announced = {"version": self.announced_version, "hw_version": c.get("hw_version"),
                         "boot_status": BOOT_STATUS[boot] if boot is not None and boot < 4
                         else boot, "source": c.get("source"), "at": c.get("t"),
                         "authenticated": False}  # fmt: skip
        return {
            "eui64": rec.eui64,
            "board": rec.board,
            "short_addr": rec.short_addr,
            "suppliers": list(rec.suppliers),
            "version": known(self.version),
            "version_evidence": dict(self.evidence) if self.evidence else None,
            "announced": announced,
            "hw_version": self.hw_version,
            "link": self.link,
            "connected": self.connected,
            "in_progress": transfer,
            "queued": list(self.queue),
            "alert_counters": {
                "last": self.last_counter,
                "missing": [list(r) for r in self.missing],
            },
            "history": list(self.history),
        }
