"""The ESP-IDF v5.5.1 otadata rules: entry codec, boot selection, arming and marking valid.
Pure code over entry tuples for every port, the host sim and the tests' fake; it reads and writes no flash.

Scope: the second-stage bootloader built with CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE (stock
MicroPython), no anti-rollback, two OTA slots (ota_0, ota_1) and no factory or test app.
An entry tuple is unpack()'s (seq, state, valid); a write is (sector, seq, state): erase that
otadata sector and program pack(seq, state) at its start (ESP-IDF write_otadata /
rewrite_ota_seq, which write one esp_ota_select_entry_t after a sector erase).
Sources (ESP-IDF v5.5.1): components/bootloader_support/src/bootloader_common_loader.c,
components/bootloader_support/src/bootloader_utility.c, components/app_update/esp_ota_ops.c.
"""

import struct
from binascii import crc32 as _crc32

from micropython import const

# esp_ota_img_states_t (esp_flash_partitions.h)
NEW = const(0)
PENDING_VERIFY = const(1)
VALID = const(2)
INVALID = const(3)
ABORTED = const(4)
UNDEFINED = const(0xFFFFFFFF)

ENTRY_LEN = const(32)  # esp_ota_select_entry_t: ota_seq u32, seq_label[20], ota_state u32, crc u32
NO_SEQ = const(0xFFFFFFFF)  # an erased entry's ota_seq
_FMT = "<I20sII"
_LABEL = b"\xff" * 20


def crc(seq):
    """bootloader_common_ota_select_crc: esp_rom_crc32_le(UINT32_MAX, &ota_seq, 4)."""
    return _crc32(struct.pack("<I", seq), 0xFFFFFFFF) & 0xFFFFFFFF


def pack(seq, state):
    """The 32 bytes of an entry as ESP-IDF writes it (label left erased)."""
    return struct.pack(_FMT, seq, _LABEL, state, crc(seq))


def unpack(buf):
    """(seq, state, valid) of the entry at the start of `buf`; valid: a sequence number and a
    matching CRC (the CRC half of bootloader_common_ota_select_valid)."""
    seq, _label, state, value = struct.unpack_from(_FMT, buf, 0)
    return seq, state, seq != NO_SEQ and value == crc(seq)


def _usable(e):
    # bootloader_common_ota_select_valid: not invalid (seq set, state not INVALID/ABORTED)
    # and the CRC matches
    return e[2] and e[1] != INVALID and e[1] != ABORTED


def _blank(e):
    # bootloader_common_ota_select_invalid: erased seq, INVALID or ABORTED; CRC not looked at
    return e[0] == NO_SEQ or e[1] == INVALID or e[1] == ABORTED


def select(e0, e1):
    """bootloader_common_get_active_otadata: the usable entry with the highest seq (0 on a
    tie, as bootloader_common_select_otadata compares against otadata[0] first), or -1."""
    u0 = _usable(e0)
    u1 = _usable(e1)
    if u0 and u1:
        return 0 if e0[0] >= e1[0] else 1
    if u0:
        return 0
    return 1 if u1 else -1


def slot_of(seq):
    """The OTA slot an entry's seq selects: (ota_seq - 1) % app_count, in u32 arithmetic."""
    return ((seq - 1) & 0xFFFFFFFF) % 2


def state_of(e0, e1, slot):
    """esp_ota_get_state_partition: the state of the first entry (sector 0 first) whose seq
    maps to `slot` and whose CRC matches, whatever that state; None when there is none."""
    for e in (e0, e1):
        if e[2] and slot_of(e[0]) == slot:
            return e[1]
    return None


def boot(e0, e1, loads):
    """What the bootloader does at reset: (slot, writes, trial).

    bootloader_utility_get_selected_boot_partition: every PENDING_VERIFY entry (state alone,
    CRC not checked) is rewritten ABORTED first. If both entries are then blank/INVALID/
    ABORTED the start slot is ota_0, and when both also lack a good CRC (erased or corrupt
    otadata) set_actual_ota_seq later writes {seq slot+1, VALID} into sector 0 for whichever
    slot loads. Otherwise the active entry picks the slot and a NEW one becomes
    PENDING_VERIFY; no active entry (both CRCs bad) starts at FACTORY_INDEX, with no write.
    bootloader_utility_load_boot_image tries the start slot and those below it, then those
    above it; an image that fails to load leaves otadata as it is. `loads(slot)` is the
    load-time image check. `trial` is what the booted app sees: its slot's state
    (state_of) is PENDING_VERIFY. slot is -1 when no slot loads.

    The one simplification: a PENDING_VERIFY entry whose CRC is bad is rewritten by the real
    bootloader with that bad CRC; pack() would give it a good one. Both are ABORTED, which
    selection skips; they differ only in set_actual_ota_seq's erased-otadata test at a
    later boot, and only for otadata torn mid-write in this exact way.
    """
    e = [e0, e1]
    writes = []
    for i in (0, 1):
        if e[i][1] == PENDING_VERIFY:
            e[i] = (e[i][0], ABORTED, e[i][2])
            writes.append((i, e[i][0], ABORTED))
    initial = False
    if _blank(e[0]) and _blank(e[1]):
        start = 0
        initial = not e[0][2] and not e[1][2]
    else:
        active = select(e[0], e[1])
        if active < 0:
            start = -1
        else:
            seq = e[active][0]
            start = slot_of(seq)
            if e[active][1] == NEW:
                e[active] = (seq, PENDING_VERIFY, True)
                writes.append((active, seq, PENDING_VERIFY))
    for slot in list(range(start, -1, -1)) + list(range(start + 1, 2)):
        if loads(slot):
            if initial:
                e[0] = (slot + 1, VALID, True)
                writes.append((0, slot + 1, VALID))
            return slot, writes, state_of(e[0], e[1], slot) == PENDING_VERIFY
    return -1, writes, False


def arm(e0, e1, slot):
    """esp_ota_set_boot_partition -> esp_rewrite_ota_data (after its image check): the write
    that makes `slot` boot next in state NEW. With an active entry, the other sector gets the
    smallest seq >= the active seq that maps to `slot` (the same seq when `slot` is already
    the active one); with none, sector 0 gets seq slot+1."""
    active = select(e0, e1)
    if active < 0:
        return 0, slot + 1, NEW
    seq = (e0, e1)[active][0]
    base = (slot + 1) % 2
    i = 0
    while seq > base + i * 2:
        i += 1
    return 1 - active, base + i * 2, NEW


def mark_valid(e0, e1):
    """esp_ota_mark_app_valid_cancel_rollback -> esp_ota_current_ota_is_workable(true): the
    ACTIVE entry becomes VALID whatever its state and whichever slot is running. Returns the
    write (sector, seq, VALID), or None when the active entry is VALID already (nothing is
    written). No active entry: ValueError (ESP_FAIL, "Running firmware is factory")."""
    active = select(e0, e1)
    if active < 0:
        raise ValueError("no active otadata entry")
    seq, state, _valid = (e0, e1)[active]
    if state == VALID:
        return None
    return active, seq, VALID
