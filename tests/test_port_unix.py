"""The unix port under the real MicroPython on a sim board: every conformance check its own
result, the otadata it leaves, and proof that the suite fails ports that cannot update."""

from __future__ import annotations

import pytest
from hanota.sim import otadata
from hanota.sim.flash import FlashFile
from hanota.sim.runner import SimBoard
from port_conformance import ALL_NAMES, GOOD, Driver
from simapps import make_board, wait_console

pytestmark = pytest.mark.micropython


@pytest.fixture(scope="module")
def sequence(tmp_path_factory):
    d = Driver(tmp_path_factory.mktemp("conformance"))
    results = d.run()
    return d, results


@pytest.mark.parametrize("name", ALL_NAMES)
def test_conformance(sequence, name):
    _d, results = sequence
    assert name in results, f"{name} never ran: {results}"
    assert results[name] == "", results[name]


def test_sequence_left_otadata_and_events(sequence):
    d, _results = sequence
    events = [e["event"] for e in d.board.events]
    # the re-armed trial boot was reset by the app's watchdog and rolled back
    assert "watchdog_armed" in events and "watchdog" in events and "rollback" in events
    flash = FlashFile(d.dir / "flash.bin", d.board.board)
    e0, e1 = flash.otadata()
    chosen = (e0, e1)[otadata.select((e0, e1))]
    assert chosen.state == otadata.VALID and d.board.running_version == GOOD


BROKEN = """
from ports import make_port
from ports.conformance import step
port = make_port()
{patch}
{steps}
print("STEPS DONE")
import time
while True:
    time.sleep_ms(100)
"""


def _run_broken(tmp_path, patch: str, steps: str) -> str:
    directory = make_board(tmp_path, BROKEN.format(patch=patch, steps=steps))
    with SimBoard(directory) as board:
        return wait_console(board, "STEPS DONE")


def test_a_port_refusing_every_app_fails_stage_app(tmp_path):
    d = Driver(tmp_path / "d")  # for its known-good app
    out = _run_broken(
        tmp_path,
        "def refuse(n):\n    raise ValueError('no')\nport.check_app = refuse",
        f"step(port, 'stage_app', {str(d.good)!r}, {d.good.stat().st_size}, {GOOD})",
    )
    assert "FAIL stage_app" in out


def test_a_confirm_that_disarms_fails(tmp_path):
    # confirm() as ESP-IDF's mark_app_valid_cancel_rollback alone: marks the active entry
    patch = (
        "from ports import otadata\n"
        "def confirm():\n"
        "    f, buf = port._flash, bytearray(32)\n"
        "    o = [0x0D000, 0x0E000]\n"
        "    f.read(o[0], buf); e0 = otadata.unpack(buf)\n"
        "    f.read(o[1], buf); e1 = otadata.unpack(buf)\n"
        "    w = otadata.mark_valid(e0, e1)\n"
        "    if w: port._write_entry((o[w[0]], otadata.pack(w[1], w[2])))\n"
        "port.confirm = confirm"
    )
    out = _run_broken(tmp_path, patch, "step(port, 'rearm', 0x01000000)")
    assert "PASS rearm" in out
    entries = FlashFile(tmp_path / "board" / "flash.bin", SimBoard(tmp_path / "board").board)
    e0, e1 = entries.otadata()
    armed = (e0, e1)[otadata.select((e0, e1))]
    assert armed.slot == 1 and armed.state == otadata.VALID  # disarmed: no trial follows


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
