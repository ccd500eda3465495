"""The host's view of ESP-IDF otadata: entries as dataclasses over firmware/ports/otadata.py.

Every rule (CRC, validity, selection, boot, arm) is the firmware module's, loaded by path as
hanota.board.flash.esp_image() loads esp32_image.py; this file only adds the 4 KB sector
layout, a readable Entry and its JSON form for `hanota sim info`.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from ..paths import firmware_module


def rules() -> ModuleType:
    """firmware/ports/otadata.py, the one copy of the rules."""
    return firmware_module("ports/otadata.py")


_fw = rules()
SECTOR = 0x1000
NO_SEQ = _fw.NO_SEQ
NEW, PENDING_VERIFY, VALID = _fw.NEW, _fw.PENDING_VERIFY, _fw.VALID
INVALID, ABORTED, UNDEFINED = _fw.INVALID, _fw.ABORTED, _fw.UNDEFINED
STATE_NAMES = {
    NEW: "NEW",
    PENDING_VERIFY: "PENDING_VERIFY",
    VALID: "VALID",
    INVALID: "INVALID",
    ABORTED: "ABORTED",
    UNDEFINED: "UNDEFINED",
}
crc = _fw.crc


@dataclass(frozen=True)
class Entry:
    """One esp_ota_select_entry_t as stored (a bad CRC is kept, not corrected)."""

    seq: int = NO_SEQ
    state: int = UNDEFINED
    crc: int = 0xFFFFFFFF
    label: bytes = b"\xff" * 20

    @classmethod
    def make(cls, seq: int, state: int) -> Entry:
        return cls.unpack(_fw.pack(seq, state))

    @classmethod
    def unpack(cls, raw: bytes) -> Entry:
        return cls(
            seq=int.from_bytes(raw[0:4], "little"),
            label=bytes(raw[4:24]),
            state=int.from_bytes(raw[24:28], "little"),
            crc=int.from_bytes(raw[28:32], "little"),
        )

    def pack(self) -> bytes:
        return b"".join(
            (self.seq.to_bytes(4, "little"), self.label, self.state.to_bytes(4, "little"),
             self.crc.to_bytes(4, "little"))
        )  # fmt: skip

    @property
    def rule(self) -> tuple[int, int, bool]:
        """The (seq, state, valid) tuple the firmware rules take."""
        return _fw.unpack(self.pack())

    @property
    def valid(self) -> bool:
        """A sequence number and a matching CRC."""
        return self.rule[2]

    @property
    def slot(self) -> int:
        return _fw.slot_of(self.seq)

    def to_json(self, sector: int) -> dict:
        return {
            "sector": sector,
            "seq": self.seq,
            "state": self.state,
            "state_name": STATE_NAMES.get(self.state, f"0x{self.state:08x}"),
            "crc_ok": self.valid,
            "slot": f"ota_{self.slot}" if self.valid else None,
        }


def parse(raw: bytes) -> tuple[Entry, Entry]:
    """Both entries from the 8 KB otadata partition."""
    return Entry.unpack(raw[:32]), Entry.unpack(raw[SECTOR : SECTOR + 32])


def select(entries: tuple[Entry, Entry]) -> int:
    """Index of the entry the bootloader boots from, or -1 (ports/otadata.select)."""
    return _fw.select(entries[0].rule, entries[1].rule)


def sector_image(entry: Entry) -> bytes:
    """A whole 4 KB sector holding `entry` (what erase + write leaves)."""
    return entry.pack() + b"\xff" * (SECTOR - len(entry.pack()))
