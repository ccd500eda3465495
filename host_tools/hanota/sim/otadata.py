"""ESP-IDF otadata: two 4 KB sectors, each starting with an esp_ota_select_entry_t.

Codec plus the bootloader's selection rules (bootloader_common / bootloader_utility with
CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE). The device side lives in firmware/ports/unix.py.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

SECTOR = 0x1000
ENTRY = struct.Struct("<I20sII")  # ota_seq, seq_label[20], ota_state, crc
NO_SEQ = 0xFFFFFFFF

# esp_ota_img_states_t
NEW = 0x0
PENDING_VERIFY = 0x1
VALID = 0x2
INVALID = 0x3
ABORTED = 0x4
UNDEFINED = 0xFFFFFFFF
STATE_NAMES = {
    NEW: "NEW",
    PENDING_VERIFY: "PENDING_VERIFY",
    VALID: "VALID",
    INVALID: "INVALID",
    ABORTED: "ABORTED",
    UNDEFINED: "UNDEFINED",
}


def crc(seq: int) -> int:
    """esp_rom_crc32_le(UINT32_MAX, &ota_seq, 4): zlib's CRC-32 seeded with 0xFFFFFFFF."""
    return zlib.crc32(struct.pack("<I", seq), 0xFFFFFFFF) & 0xFFFFFFFF


@dataclass(frozen=True)
class Entry:
    seq: int = NO_SEQ
    state: int = UNDEFINED
    crc: int = 0xFFFFFFFF
    label: bytes = b"\xff" * 20

    @classmethod
    def make(cls, seq: int, state: int) -> Entry:
        return cls(seq=seq, state=state, crc=crc(seq))

    @classmethod
    def unpack(cls, raw: bytes) -> Entry:
        seq, label, state, value = ENTRY.unpack_from(raw)
        return cls(seq=seq, state=state, crc=value, label=label)

    def pack(self) -> bytes:
        return ENTRY.pack(self.seq, self.label, self.state, self.crc)

    @property
    def valid(self) -> bool:
        """bootloader_common_ota_select_valid: a sequence number and a matching CRC."""
        return self.seq != NO_SEQ and self.crc == crc(self.seq)

    @property
    def usable(self) -> bool:
        """Valid and not INVALID/ABORTED (what the bootloader may boot)."""
        return self.valid and self.state not in (INVALID, ABORTED)

    @property
    def slot(self) -> int:
        return (self.seq - 1) % 2

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
    """Index of the entry the bootloader boots from (highest usable seq), or -1."""
    best = -1
    for i, ent in enumerate(entries):
        if ent.usable and (best < 0 or ent.seq > entries[best].seq):
            best = i
    return best


def sector_image(entry: Entry) -> bytes:
    """A whole 4 KB sector holding `entry` (what erase + write leaves)."""
    return entry.pack() + b"\xff" * (SECTOR - ENTRY.size)
