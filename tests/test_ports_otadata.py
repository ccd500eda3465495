"""The otadata rules (firmware/ports/otadata.py) against ESP-IDF v5.5.1, CPython and MicroPython.

Each expectation is worked out from the ESP-IDF function the test names, not from the module:
bootloader_common_loader.c (CRC, validity, active entry), bootloader_utility.c
(get_selected_boot_partition, load_boot_image, set_actual_ota_seq) and esp_ota_ops.c
(esp_rewrite_ota_data, esp_ota_current_ota_is_workable, esp_ota_get_state_partition).
"""

from __future__ import annotations

import json
import struct
import sys
import zlib

import pytest
from hanota.paths import FIRMWARE
from mpy import check_mpy

sys.path.insert(0, str(FIRMWARE))
from ports import otadata as od  # noqa: E402

BLANK = od.unpack(b"\xff" * 32)


def ent(seq: int, state: int) -> tuple[int, int, bool]:
    return od.unpack(od.pack(seq, state))


def bad_crc(seq: int, state: int) -> tuple[int, int, bool]:
    raw = bytearray(od.pack(seq, state))
    raw[28] ^= 1
    return od.unpack(bytes(raw))


def both(slot: int) -> bool:
    return True


def only(*slots: int):
    return lambda slot: slot in slots


# --- codec -------------------------------------------------------------------------------


def test_crc_is_crc32_le_seeded_all_ones():
    # esp_rom_crc32_le(UINT32_MAX, &seq, 4); ESP-IDF's own otatool.py (components/app_update)
    # computes it as binascii.crc32(struct.pack("I", seq), 0xFFFFFFFF)
    for seq in (0, 1, 2, 7, 0x12345678, 0xFFFFFFFE):
        assert od.crc(seq) == zlib.crc32(struct.pack("<I", seq), 0xFFFFFFFF)
    assert od.crc(1) == 0x4743989A


def test_pack_layout_and_unpack():
    raw = od.pack(3, od.NEW)
    assert len(raw) == od.ENTRY_LEN == 32
    seq, label, state, value = struct.unpack("<I20sII", raw)
    assert (seq, label, state, value) == (3, b"\xff" * 20, od.NEW, od.crc(3))
    assert od.unpack(raw) == (3, od.NEW, True)
    assert od.unpack(raw + b"\x00" * 4064) == (3, od.NEW, True)  # a whole sector


def test_unpack_validity():
    assert BLANK == (0xFFFFFFFF, od.UNDEFINED, False)
    assert bad_crc(2, od.VALID) == (2, od.VALID, False)
    # an erased seq never counts, whatever the CRC word says
    assert od.unpack(struct.pack("<I20sII", 0xFFFFFFFF, b"", 2, od.crc(0xFFFFFFFF)))[2] is False


# --- selection (bootloader_common_get_active_otadata) ------------------------------------


def test_select_highest_usable_seq():
    assert od.select(ent(1, od.VALID), ent(2, od.VALID)) == 1
    assert od.select(ent(3, od.VALID), ent(2, od.NEW)) == 0
    assert od.select(ent(5, od.UNDEFINED), BLANK) == 0  # UNDEFINED is not skipped


def test_select_skips_invalid_aborted_bad_crc():
    assert od.select(ent(1, od.VALID), ent(2, od.ABORTED)) == 0
    assert od.select(ent(1, od.VALID), ent(2, od.INVALID)) == 0
    assert od.select(ent(1, od.VALID), bad_crc(2, od.VALID)) == 0
    assert od.select(BLANK, BLANK) == -1
    assert od.select(ent(1, od.ABORTED), bad_crc(2, od.VALID)) == -1


def test_select_tie_goes_to_sector_0():
    # bootloader_common_select_otadata: MAX(seq0, seq1) == seq0 -> otadata[0]
    assert od.select(ent(3, od.VALID), ent(3, od.NEW)) == 0


def test_slot_of_u32():
    assert [od.slot_of(s) for s in (1, 2, 3, 4)] == [0, 1, 0, 1]
    assert od.slot_of(0) == 1  # (0u - 1) % 2 in u32 arithmetic


def test_state_of_first_matching_sector():
    assert od.state_of(ent(1, od.VALID), ent(2, od.PENDING_VERIFY), 1) == od.PENDING_VERIFY
    assert od.state_of(ent(1, od.ABORTED), ent(3, od.NEW), 0) == od.ABORTED
    assert od.state_of(BLANK, BLANK, 0) is None
    assert od.state_of(bad_crc(1, od.VALID), BLANK, 0) is None


# --- boot (bootloader_utility.c) ---------------------------------------------------------


def test_boot_blank_otadata_writes_seq1_valid():
    # no factory, both entries erased: start at ota_0, ota_has_initial_contents, and
    # set_actual_ota_seq writes {seq index+1, VALID} into sector 0 once the slot loads
    assert od.boot(BLANK, BLANK, both) == (0, [(0, 1, od.VALID)], False)


def test_boot_blank_otadata_ota0_broken_boots_ota1_seq2():
    assert od.boot(BLANK, BLANK, only(1)) == (1, [(0, 2, od.VALID)], False)


def test_boot_blank_nothing_loads():
    assert od.boot(BLANK, BLANK, only()) == (-1, [], False)


def test_boot_corrupt_crcs_count_as_initial():
    # both entries "invalid" (ABORTED / erased seq) and neither has a good CRC
    assert od.boot(bad_crc(4, od.ABORTED), BLANK, both) == (0, [(0, 1, od.VALID)], False)


def test_boot_aborted_good_crc_is_not_initial():
    # both entries invalid, but a good CRC: ota_0 boots and nothing is written
    assert od.boot(ent(1, od.ABORTED), ent(2, od.ABORTED), both) == (0, [], False)


def test_boot_bad_crc_with_live_state_starts_at_factory_index():
    # not "invalid" (state VALID, seq set) so no initial contents; no active entry ->
    # FACTORY_INDEX: load_boot_image skips the absent factory and tries ota_0, ota_1
    assert od.boot(bad_crc(2, od.VALID), BLANK, both) == (0, [], False)
    assert od.boot(bad_crc(2, od.VALID), BLANK, only(1)) == (1, [], False)


def test_boot_new_entry_becomes_trial():
    assert od.boot(ent(1, od.VALID), ent(2, od.NEW), both) == (
        1,
        [(1, 2, od.PENDING_VERIFY)],
        True,
    )


def test_boot_pending_becomes_aborted_and_rolls_back():
    assert od.boot(ent(1, od.VALID), ent(2, od.PENDING_VERIFY), both) == (
        0,
        [(1, 2, od.ABORTED)],
        False,
    )


def test_boot_pending_with_bad_crc_still_aborted():
    # the PENDING_VERIFY loop looks at ota_state only
    slot, writes, trial = od.boot(ent(1, od.VALID), bad_crc(2, od.PENDING_VERIFY), both)
    assert (slot, writes, trial) == (0, [(1, 2, od.ABORTED)], False)


def test_boot_trial_image_fails_to_load():
    # the NEW entry is marked PENDING_VERIFY before the load; the fallback app is not on
    # trial and otadata is left PENDING_VERIFY (aborted at the next boot)
    assert od.boot(ent(1, od.VALID), ent(2, od.NEW), only(0)) == (
        0,
        [(1, 2, od.PENDING_VERIFY)],
        False,
    )


def test_boot_load_order_from_ota1_goes_down_then_up():
    assert od.boot(ent(2, od.VALID), BLANK, only(0)) == (0, [], False)
    assert od.boot(ent(1, od.VALID), BLANK, only(1)) == (1, [], False)


def test_boot_valid_is_not_trial():
    assert od.boot(ent(5, od.VALID), ent(4, od.VALID), both) == (0, [], False)


def test_boot_same_seq_rearm_in_sector_1_is_not_selected():
    # tie -> sector 0 (VALID): the NEW copy in sector 1 is never tried
    assert od.boot(ent(3, od.VALID), ent(3, od.NEW), both) == (0, [], False)


def test_boot_same_seq_rearm_in_sector_0_is_trial():
    assert od.boot(ent(3, od.NEW), ent(3, od.VALID), both) == (
        0,
        [(0, 3, od.PENDING_VERIFY)],
        True,
    )


# --- arm (esp_rewrite_ota_data) ----------------------------------------------------------


def test_arm_blank_writes_sector0():
    assert od.arm(BLANK, BLANK, 1) == (0, 2, od.NEW)
    assert od.arm(BLANK, BLANK, 0) == (0, 1, od.NEW)


def test_arm_other_slot_next_seq_other_sector():
    assert od.arm(ent(1, od.VALID), BLANK, 1) == (1, 2, od.NEW)
    assert od.arm(ent(1, od.VALID), ent(2, od.VALID), 0) == (0, 3, od.NEW)
    assert od.arm(ent(5, od.VALID), ent(2, od.ABORTED), 1) == (1, 6, od.NEW)


def test_arm_active_slot_keeps_seq():
    assert od.arm(ent(3, od.VALID), ent(2, od.ABORTED), 0) == (1, 3, od.NEW)
    assert od.arm(ent(1, od.VALID), ent(2, od.VALID), 1) == (0, 2, od.NEW)


def test_arm_then_boot_runs_trial():
    e0, e1 = ent(1, od.VALID), BLANK
    sector, seq, state = od.arm(e0, e1, 1)
    e = [e0, e1]
    e[sector] = ent(seq, state)
    assert od.boot(e[0], e[1], both) == (1, [(1, 2, od.PENDING_VERIFY)], True)


# --- mark_valid (esp_ota_current_ota_is_workable(true)) ----------------------------------


def test_mark_valid_pending_entry():
    assert od.mark_valid(ent(1, od.VALID), ent(2, od.PENDING_VERIFY)) == (1, 2, od.VALID)


def test_mark_valid_marks_armed_new_entry():
    # the active entry whatever its state: after arming, it is the NEW one (rollback gone)
    assert od.mark_valid(ent(1, od.VALID), ent(2, od.NEW)) == (1, 2, od.VALID)
    assert od.mark_valid(ent(7, od.UNDEFINED), BLANK) == (0, 7, od.VALID)


def test_mark_valid_already_valid_writes_nothing():
    assert od.mark_valid(ent(2, od.VALID), ent(1, od.VALID)) is None


def test_mark_valid_without_active_entry_raises():
    with pytest.raises(ValueError):
        od.mark_valid(BLANK, BLANK)
    with pytest.raises(ValueError):
        od.mark_valid(ent(1, od.ABORTED), bad_crc(2, od.VALID))


# --- the same answers under MicroPython --------------------------------------------------

_CASES = [
    ("boot", [[0xFFFFFFFF, 0xFFFFFFFF, False], [0xFFFFFFFF, 0xFFFFFFFF, False]], [0, 1]),
    ("boot", [[0xFFFFFFFF, 0xFFFFFFFF, False], [0xFFFFFFFF, 0xFFFFFFFF, False]], [1]),
    ("boot", [[1, 2, True], [2, 0, True]], [0, 1]),
    ("boot", [[1, 2, True], [2, 1, True]], [0, 1]),
    ("boot", [[1, 2, True], [2, 0, True]], [0]),
    ("boot", [[3, 0, True], [3, 2, True]], [0, 1]),
    ("boot", [[2, 2, False], [0xFFFFFFFF, 0xFFFFFFFF, False]], [1]),
    ("arm", [[1, 2, True], [0xFFFFFFFF, 0xFFFFFFFF, False]], 1),
    ("arm", [[3, 2, True], [2, 4, True]], 0),
    ("arm", [[0xFFFFFFFF, 0xFFFFFFFF, False], [0xFFFFFFFF, 0xFFFFFFFF, False]], 1),
    ("mark_valid", [[1, 2, True], [2, 0, True]], None),
    ("mark_valid", [[2, 2, True], [1, 2, True]], None),
    ("mark_valid", [[1, 4, True], [2, 3, True]], None),
    ("select", [[4, 2, True], [4, 0, True]], None),
    ("state_of", [[1, 4, True], [3, 0, True]], 0),
    ("pack", [[5, 1, True], [0, 0, False]], None),
]

_RUNNER = """
import json
from ports import otadata as od
out = []
for name, es, arg in json.loads(CASES):
    e0 = tuple(es[0])
    e1 = tuple(es[1])
    try:
        if name == "boot":
            slot, writes, trial = od.boot(e0, e1, lambda s: s in arg)
            r = [slot, [list(w) for w in writes], trial]
        elif name == "arm":
            r = list(od.arm(e0, e1, arg))
        elif name == "mark_valid":
            w = od.mark_valid(e0, e1)
            r = None if w is None else list(w)
        elif name == "select":
            r = od.select(e0, e1)
        elif name == "state_of":
            r = od.state_of(e0, e1, arg)
        else:
            raw = od.pack(e0[0], e0[1])
            r = [list(od.unpack(raw)), od.crc(e0[0]), len(raw)]
    except ValueError:
        r = "ValueError"
    out.append(r)
print(json.dumps(out))
"""


def _normalise(value):
    return json.loads(json.dumps(value))


def test_micropython_gives_the_same_answers():
    cases = json.dumps(_CASES)
    ns: dict = {"CASES": cases}
    exec(_RUNNER.replace("print(json.dumps(out))", "RESULT = out"), ns)
    expected = _normalise(ns["RESULT"])
    assert expected[0] == [0, [[0, 1, od.VALID]], False]
    assert expected[3] == [0, [[1, 2, od.ABORTED]], False]
    got = check_mpy("CASES = " + repr(cases) + "\n" + _RUNNER)
    assert json.loads(got.strip().splitlines()[-1]) == expected
