"""Enrolled devices (from provisioning's device record) and what the hub knows of each.

Pure data and bookkeeping; the protocol decisions are core.Hub's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_HEX16 = re.compile(r"^[0-9a-f]{16}$")
_HEX128 = re.compile(r"^[0-9a-f]{128}$")
BOOT_STATUS = ("normal", "activated", "rolled-back", "refused")


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
    return DeviceRecord(
        eui64=eui,
        public_key=bytes.fromhex(key),
        board=str(doc.get("board", "")),
        suppliers=list(sup),
        short_addr=short,
        **ints,
    )


def _supplier_ok(s: Any) -> bool:
    return isinstance(s, str) and 1 <= len(s) <= 16 and s.isascii() and s.isprintable()


@dataclass
class DeviceState:
    """Everything the hub knows of one device; `to_json` is the inventory entry."""

    record: DeviceRecord
    version: int | None = None  # active version, from its last report
    hw_version: int | None = None
    boot_status: int | None = None
    reported_at: float | None = None
    link: str | None = None
    connected: bool = False
    transfer: str | None = None  # id of the submission in progress on this device
    history: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self, transfer: dict[str, Any] | None) -> dict[str, Any]:
        rec = self.record
        boot = self.boot_status
        return {
            "eui64": rec.eui64,
            "board": rec.board,
            "short_addr": rec.short_addr,
            "suppliers": list(rec.suppliers),
            "version": self.version,
            "hw_version": self.hw_version if self.hw_version is not None else rec.hw_version,
            "boot_status": BOOT_STATUS[boot] if boot is not None and boot < 4 else boot,
            "reported_at": self.reported_at,
            "link": self.link,
            "connected": self.connected,
            "in_progress": transfer,
            "history": list(self.history),
        }
