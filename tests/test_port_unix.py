"""The unix port passes the port conformance suite under the real MicroPython, on a sim board."""

from __future__ import annotations

import pytest
from hanota.sim import otadata
from hanota.sim.flash import FlashFile
from hanota.sim.runner import SimBoard
from port_conformance import assert_conformant, run_suite
from simapps import make_board, wait_console

pytestmark = pytest.mark.micropython

CHECKS = ("geometry", "round_trip", "write_unerased", "bounds", "app_refused", "store",
          "link", "time", "version", "otadata")  # fmt: skip


def test_unix_port_conformance_and_otadata_transitions(tmp_path):
    state: dict = {}

    def run(code: str) -> str:
        directory = make_board(tmp_path, code)
        board = SimBoard(directory).start()
        state.update(board=board, dir=directory)
        return wait_console(board, "CONFORMANCE ")

    try:
        results = run_suite(run, otadata=True)
        assert_conformant(results, CHECKS)
        board = state["board"]
        flash = FlashFile(state["dir"] / "flash.bin", board.board)
        entries = flash.otadata()
        # confirm() on blank otadata writes nothing; set_pending() arms ota_1 with seq 2, NEW
        assert entries[0] == otadata.Entry.make(2, otadata.NEW)
        assert not entries[1].valid
        # next boot: ota_1 holds no app (the suite scribbled on it), so ota_0 boots again
        board.power_cycle()
        ev = board.wait_for("bad_app")
        assert ev["slot"] == "ota_1"
        boot = board.wait_for("boot", after=board.events.index(ev))
        assert boot["slot"] == "ota_0"
    finally:
        if "board" in state:
            state["board"].stop()


def test_store_survives_reboot_and_is_counted(tmp_path):
    code = """
from ports import make_port
port = make_port()
print("APP got", port.store.get("k"))
if port.store.get("k") is None:
    port.store.put("k", b"v1")
    print("APP put")
"""
    directory = make_board(tmp_path, code)
    with SimBoard(directory) as board:
        wait_console(board, "APP put")
        assert board.ops >= 2  # LittleFS block writes/erases are flash operations
        board.power_cycle()
        wait_console(board, "APP got b'v1'")
