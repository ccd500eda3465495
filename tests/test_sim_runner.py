"""SimBoard end to end: boot, HAN echo, update, rollback by crash and by watchdog, power cut."""

from __future__ import annotations

import json
import os
import time

import pytest
from hanota.sim import otadata
from hanota.sim.flash import FlashFile
from hanota.sim.runner import SimBoard
from simapps import (
    CRASH_FIRST_LINE,
    ECHO,
    NEVER_CONFIRM,
    PATTERN,
    STAGER,
    board_json,
    build_app,
    make_board,
    wait_console,
)  # fmt: skip

pytestmark = pytest.mark.micropython


def test_boot_runs_factory_app_and_echoes_on_han(tmp_path):
    directory = make_board(tmp_path, ECHO)
    with SimBoard(directory) as board:
        ev = board.wait_for("boot")
        assert ev["slot"] == "ota_0" and ev["version"] == 0x01000000 and not ev["pending_verify"]
        wait_console(board, "APP confirmed")
        fd = os.open(board.han_path, os.O_RDWR | os.O_NOCTTY)
        try:
            os.write(fd, b"hello board")
            got = b""
            deadline = time.monotonic() + 5
            while len(got) < 11 and time.monotonic() < deadline:
                got += os.read(fd, 64)
        finally:
            os.close(fd)
        assert got == b"hello board"
        assert board.ops == 0  # confirm on initial otadata writes nothing


def _update(tmp_path, new_main: str, watchdog_ms: int = 20000) -> tuple[SimBoard, FlashFile]:
    directory = make_board(tmp_path / "x", "# placeholder\n")
    board_def = board_json(directory)
    stage = tmp_path / "v2.bin"
    stage.write_bytes(build_app(tmp_path, "v2", new_main, 0x01000002, board_def))
    v1 = build_app(
        tmp_path, "v1", STAGER.replace("{stage!r}", repr(str(stage))), 0x01000001, board_def
    )
    flash = FlashFile(directory / "flash.bin", board_def)
    flash.erase_partition("ota_0")
    flash.write(flash.part("ota_0")[0], v1)
    return SimBoard(directory, watchdog_ms=watchdog_ms), flash


def test_update_new_app_confirms_and_becomes_valid(tmp_path):
    board, flash = _update(tmp_path, ECHO)
    with board:
        ev = board.wait_for("boot", after=1)
        assert (ev["slot"], ev["version"], ev["pending_verify"]) == ("ota_1", 0x01000002, True)
        board.wait_for("confirmed")
        entries = flash.otadata()
        chosen = entries[otadata.select(entries)]
        assert (chosen.slot, chosen.state) == (1, otadata.VALID)
        assert board.events[1]["event"] == "reset"


def test_crash_on_first_line_rolls_back(tmp_path):
    board, flash = _update(tmp_path, CRASH_FIRST_LINE, watchdog_ms=1500)
    with board:
        board.wait_for("watchdog")
        ev = board.wait_for("rollback")
        assert ev["slot"] == "ota_1"
        back = board.wait_for("boot", after=board.events.index(ev))
        assert (back["slot"], back["version"], back["pending_verify"]) == (
            "ota_0",
            0x01000001,
            False,
        )
    assert "crash on the first line" in board.console_text()
    states = {e.slot: e.state for e in flash.otadata()}
    assert states[1] == otadata.ABORTED


def test_never_confirming_app_is_reset_by_watchdog_and_rolled_back(tmp_path):
    board, flash = _update(tmp_path, NEVER_CONFIRM, watchdog_ms=1500)
    with board:
        t_boot = board.wait_for("boot", after=1)
        dog = board.wait_for("watchdog", timeout=10)
        assert 1.4 <= dog["t"] - t_boot["t"] <= 4
        ev = board.wait_for("rollback")
        back = board.wait_for("boot", after=board.events.index(ev))
        assert (back["slot"], back["version"]) == ("ota_0", 0x01000001)


def test_power_cut_mid_write_leaves_half_a_write_and_boots_again(tmp_path):
    directory = make_board(tmp_path, PATTERN)
    with SimBoard(directory, cut_at=4) as board:
        board.wait_for("power_cut")
        board.wait_for("boot", after=2)
        wait_console(board, "APP boot=2")
        assert board.ops == 4
    flash = FlashFile(directory / "flash.bin", board_json(directory))
    base = flash.part("ota_1")[0]
    assert flash.read(base, 4096) == b"\x11" * 4096
    assert flash.read(base + 4096, 4096) == b"\x22" * 2048 + b"\xff" * 2048


def test_power_cut_mid_erase_erases_half_the_sector(tmp_path):
    directory = make_board(tmp_path, PATTERN)
    flash = FlashFile(directory / "flash.bin", board_json(directory))
    base = flash.part("ota_1")[0]
    flash.write(base, b"\x00" * 4096)
    with SimBoard(directory) as board:
        board.cut_at(1)
        board.wait_for("power_cut")
        wait_console(board, "APP boot=2")
    assert flash.read(base, 4096) == b"\xff" * 2048 + b"\x00" * 2048


def test_console_off_board_offers_no_repl(tmp_path):
    directory = make_board(tmp_path, ECHO)
    doc = board_json(directory)
    doc["console"] = "off"
    (directory / "board.json").write_text(json.dumps(doc))
    with SimBoard(directory) as board:
        wait_console(board, "APP confirmed")
        fd = os.open(board.console_path, os.O_RDWR | os.O_NOCTTY)
        try:
            os.write(fd, b"\x03\r\x01print(6*7)\r\x04")
            time.sleep(0.5)
        finally:
            os.close(fd)
        text = board.console_text()
        assert "KeyboardInterrupt" not in text and "42" not in text and ">>>" not in text
        assert [e["event"] for e in board.events] == ["boot"]


FEEDER = """
from ports import make_port
port = make_port()
port.watchdog(800)
for _ in range(30):  # 3 s of feeding at every 100 ms step: more than three timeouts
    port.feed()
    port.sleep_ms(100)
print("APP fed for 3 s")
while True:
    port.sleep_ms(100)
"""

UNARMED = """
from ports import make_port
port = make_port()
print("APP pending=%d, no watchdog armed" % port.pending_verify())
while True:
    port.sleep_ms(100)
"""


def test_a_fed_watchdog_holds_and_a_starved_one_resets(tmp_path):
    directory = make_board(tmp_path, FEEDER)
    with SimBoard(directory) as board:
        wait_console(board, "APP fed for 3 s")
        assert "watchdog" not in [e["event"] for e in board.events]
        armed = board.wait_for("watchdog_armed")
        assert armed["ms"] == 800
        board.wait_for("watchdog", timeout=5)
        board.wait_for("boot", after=board.events.index(armed) + 1)


def test_a_trial_boot_without_a_watchdog_is_never_reset(tmp_path):
    # the runner plays no watchdog of its own: as on a stock ESP32, nothing resets a trial
    # boot whose app armed none
    board, _flash = _update(tmp_path, UNARMED, watchdog_ms=500)
    with board:
        ev = board.wait_for("boot", after=1)
        assert ev["pending_verify"]
        time.sleep(2.0)
        assert [e["event"] for e in board.events[board.events.index(ev) + 1 :]] == []
