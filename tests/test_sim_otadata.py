"""otadata codec (ESP-IDF golden CRCs) and the bootloader's decisions on a real flash file."""

from __future__ import annotations

import pytest
from hanota.board import defs
from hanota.sim import bootloader, otadata
from hanota.sim.flash import FlashError, FlashFile
from mpy import check_mpy
from simapps import ECHO, build_app

# esp_rom_crc32_le(UINT32_MAX, &ota_seq, 4) as seen in ESP-IDF-written otadata dumps
GOLDEN_CRC = {1: 0x4743989A, 2: 0x55F63774}


def test_crc_matches_esp_idf_golden_values():
    for seq, value in GOLDEN_CRC.items():
        assert otadata.crc(seq) == value


def test_device_side_crc_matches_host():
    out = check_mpy("from ports.otadata import crc; print(crc(1), crc(2), crc(77))")
    assert [int(x) for x in out.split()] == [GOLDEN_CRC[1], GOLDEN_CRC[2], otadata.crc(77)]


def test_entry_round_trip_and_layout():
    entry = otadata.Entry.make(5, otadata.PENDING_VERIFY)
    raw = entry.pack()
    assert len(raw) == 32 and raw[:4] == b"\x05\0\0\0" and raw[24:28] == b"\x01\0\0\0"
    assert otadata.Entry.unpack(raw) == entry and entry.valid and entry.slot == 0
    assert not otadata.Entry.unpack(b"\xff" * 32).valid
    assert not otadata.Entry(seq=3, state=otadata.VALID, crc=0).valid


def test_state_values_are_esp_idf_ones():
    assert (otadata.NEW, otadata.PENDING_VERIFY, otadata.VALID) == (0, 1, 2)
    assert (otadata.INVALID, otadata.ABORTED, otadata.UNDEFINED) == (3, 4, 0xFFFFFFFF)


@pytest.fixture
def flash(tmp_path):
    board = defs.load("sim-ppmid")
    f = FlashFile.create(tmp_path / "flash.bin", board)
    for slot, version in ((0, 0x01000001), (1, 0x01000002)):
        f.write(f.part(f"ota_{slot}")[0], build_app(tmp_path, f"s{slot}", ECHO, version, board))
    return f


def test_blank_otadata_boots_ota_0_and_writes_seq_1_valid(flash):
    d = bootloader.decide(flash, write=False)
    assert (d.slot, d.version, d.pending_verify) == (0, 0x01000001, False)
    assert flash.otadata() == (otadata.Entry(), otadata.Entry())  # write=False: untouched
    d = bootloader.decide(flash)
    assert (d.slot, d.version, d.pending_verify) == (0, 0x01000001, False)
    # set_actual_ota_seq: a real board leaves no blank otadata behind after its first boot
    assert flash.otadata() == (otadata.Entry.make(1, otadata.VALID), otadata.Entry())


def test_blank_otadata_with_broken_ota_0_writes_seq_2(flash):
    flash.write(flash.part("ota_0")[0] + 100, b"\x00")
    d = bootloader.decide(flash)
    assert d.slot == 1
    assert flash.otadata()[0] == otadata.Entry.make(2, otadata.VALID)


def test_host_entry_keeps_a_bad_crc():
    raw = otadata.Entry(seq=2, state=otadata.VALID, crc=0x1234).pack()
    assert otadata.Entry.unpack(raw).crc == 0x1234 and not otadata.Entry.unpack(raw).valid
    assert otadata.Entry.unpack(raw).rule == (2, otadata.VALID, False)


def test_new_becomes_pending_then_pending_at_boot_rolls_back(flash):
    flash.write_otadata(0, otadata.Entry.make(1, otadata.VALID))
    flash.write_otadata(1, otadata.Entry.make(2, otadata.NEW))
    d = bootloader.decide(flash)
    assert (d.slot, d.pending_verify) == (1, True)
    assert flash.otadata()[1].state == otadata.PENDING_VERIFY
    d = bootloader.decide(flash)  # reset before confirm
    assert (d.slot, d.pending_verify) == (0, False)
    assert d.events[0] == {"event": "rollback", "slot": "ota_1", "seq": 2}
    assert flash.otadata()[1].state == otadata.ABORTED


def test_valid_entry_with_highest_seq_wins(flash):
    flash.write_otadata(0, otadata.Entry.make(3, otadata.VALID))
    flash.write_otadata(1, otadata.Entry.make(2, otadata.VALID))
    assert bootloader.decide(flash).slot == 0
    flash.write_otadata(1, otadata.Entry.make(4, otadata.VALID))
    assert bootloader.decide(flash).slot == 1


def test_both_entries_invalid_boot_ota_0(flash):
    flash.write_otadata(0, otadata.Entry.make(1, otadata.ABORTED))
    flash.write_otadata(1, otadata.Entry(seq=2, state=otadata.VALID, crc=0x1234))
    before = flash.otadata()
    d = bootloader.decide(flash)
    assert (d.slot, d.pending_verify) == (0, False)
    assert flash.otadata() == before  # a good-CRC entry: not "initial contents", no write


def test_corrupt_selected_slot_falls_back_to_the_other(flash):
    flash.write_otadata(0, otadata.Entry.make(2, otadata.NEW))
    off = flash.part("ota_1")[0]
    flash.write(off + 100, b"\x00")  # one byte in the tree
    d = bootloader.decide(flash)
    assert (d.slot, d.pending_verify) == (0, False)
    assert d.events[-1]["event"] == "bad_app" and "hash mismatch" in d.events[-1]["error"]


def test_no_bootable_app(flash):
    flash.erase_partition("ota_0")
    flash.erase_partition("ota_1")
    with pytest.raises(bootloader.NoBootableApp, match="no bootable app"):
        bootloader.decide(flash)


def test_corrupt_flash_file_is_named(flash):
    flash.write(0x8000 + 5, b"\x00")
    with pytest.raises(FlashError, match="corrupt flash file: the partition table"):
        flash.check()
    with open(flash.path, "r+b") as f:
        f.truncate(1000)
    with pytest.raises(FlashError, match="corrupt flash file: 1000 bytes"):
        flash.check()
