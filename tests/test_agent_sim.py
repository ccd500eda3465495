"""The agent on a real simulated board (hanota.sim runner, flash file, bootloader, watchdog)
driven by the CH test double over the HAN pty.

Heap: the board's own (board.json): the app's modules execute in place from the mapped
slot (docs/agent.md, "Memory"). A 2 MB update in 3 fragments, compressed or not, runs
without an agent crash at QUALITY.md's 64k, the boot after its activation included.
"""

from __future__ import annotations

import os
import select
import shutil
import time
from pathlib import Path

import pytest
import simapps
from hanota import paths
from hanota.board import defs
from hanota.rig import simboards
from hanota.rig.factory import Images
from hanota.sim import appimage
from hanota.sim.runner import SimBoard
from otaclient import zcl
from sealing_double import SealingDouble

pytestmark = pytest.mark.micropython
V1, V2 = 0x01000000, 0x01000100
HEAP = defs.load("sim-ppmid")["heap"]
FIRMWARE = Path(__file__).parents[1] / "firmware"


def _app(version, pad_to=None, source=FIRMWARE):
    board = defs.load("sim-ppmid")
    return appimage.build(appimage.collect(source), version, board, pad_to=pad_to)


def _board(tmp, app, max_size=750_000, watchdog_ms=None, compress=False):
    imgs = Images(tmp / "keys")
    ident, record = simboards.fresh(
        tmp / "b", "sim-ppmid", factory_version=V1, trust=[imgs.pub_path],
        suppliers=["supplier-a", "supplier-b"], seed=str(tmp),
    )  # fmt: skip
    paths = imgs.build(V2, board="sim-ppmid", payload=app, max_size=max_size, compress=compress)
    # a provisioned sim board holds a CH link key: the double seals its commands with it
    dbl = SealingDouble([p.read_bytes() for p in paths], key=bytes.fromhex(record["link_key"]),
                        dev_addr=record["short_addr"])  # fmt: skip
    dbl.device_pub = bytes.fromhex(record["public_key"])
    dbl.eui64 = bytes.fromhex(record["eui64"])
    return SimBoard(tmp / "b", heap=HEAP, watchdog_ms=watchdog_ms), dbl


def _serve(sb, dbl, until, timeout):
    """Relay the HAN pty to the double until until() or timeout (s)."""
    fd = os.open(sb.han_path, os.O_RDWR | os.O_NOCTTY)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not until():
            r, _, _ = select.select([fd], [], [], 0.2)
            if not r:
                continue
            try:
                data = os.read(fd, 4096)
            except OSError:  # the board is rebooting
                time.sleep(0.1)
                continue
            for frame in dbl(data):
                os.write(fd, frame)
    finally:
        os.close(fd)
    assert until(), f"timeout; events {dbl.events[-8:]}, board {sb.events[-6:]}"


def _results(dbl):
    return [(a.supplier, a.result, a.version, ok) for a, ok in dbl.alerts]


def test_sim_update_activates_and_reports(tmp_path):
    sb, dbl = _board(tmp_path, _app(V2))
    with sb:
        sb.wait_for("boot", timeout=30)
        _serve(sb, dbl, lambda: len(dbl.alerts) >= 2, timeout=120)
    assert ("announce", V2, zcl.BOOT_ACTIVATED) in dbl.events
    assert _results(dbl) == [(s, 0, V2, True) for s in ("supplier-a", "supplier-b")]


def test_sim_crashing_app_rolls_back_and_reports(tmp_path):
    # the new app arms the trial boot's watchdog as firmware/main.py does, then dies: on a
    # stock ESP32 it would sit at the REPL, and only the watchdog's reset rolls it back
    src = tmp_path / "crash"
    for pkg in ("otaclient", "ports"):
        shutil.copytree(FIRMWARE / pkg, src / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    (src / "main.py").write_text(simapps.CRASH_FIRST_LINE)
    sb, dbl = _board(tmp_path, _app(V2, source=src), watchdog_ms=3000)
    dbl.reoffer = False  # one attempt
    with sb:
        sb.wait_for("boot", timeout=30)
        _serve(sb, dbl, lambda: len(dbl.alerts) >= 2, timeout=180)
    assert ("announce", V1, zcl.BOOT_ROLLED_BACK) in dbl.events
    assert _results(dbl)[:2] == [(s, 1, V1, True) for s in ("supplier-a", "supplier-b")]


def test_sim_fragmented_2mb_update_with_a_reset_mid_transfer(tmp_path):
    sb, dbl = _board(tmp_path, _app(V2, pad_to=2_100_000))
    assert len(dbl.files) >= 3
    with sb:
        sb.wait_for("boot", timeout=30)
        _serve(sb, dbl, lambda: dbl.idx >= 1 and dbl.bytes > 900_000, timeout=600)
        sb.power_cycle()
        served = dbl.bytes
        _serve(sb, dbl, lambda: len(dbl.alerts) >= 2, timeout=900)
    assert ("announce", V2, zcl.BOOT_ACTIVATED) in dbl.events
    assert any(e["event"] == "power_cycle" for e in sb.events)
    total = sum(f.size for f in dbl.files)
    assert dbl.bytes - served <= total - served + max(f.size for f in dbl.files) + 4096


def test_sim_compressed_fragmented_2mb_update_at_64k(tmp_path):
    # no agent crash on the way (a crash restarts the agent, and an update could still end)
    sb, dbl = _board(tmp_path, _app(V2, pad_to=2_100_000), compress=True)
    assert len(dbl.files) >= 3
    sb.heap = "64k"
    with sb:
        sb.wait_for("boot", timeout=30)
        _serve(sb, dbl, lambda: len(dbl.alerts) >= 2, timeout=600)
    console = sb.console_text()
    assert ("announce", V2, zcl.BOOT_ACTIVATED) in dbl.events, (dbl.events[-6:], console[-3000:])
    assert "agent: crashed" not in console, console[-3000:]


def test_sim_fragmented_2mb_update_at_64k(tmp_path):
    sb, dbl = _board(tmp_path, _app(V2, pad_to=2_100_000))
    assert len(dbl.files) >= 3
    sb.heap = "64k"
    with sb:
        sb.wait_for("boot", timeout=30)
        _serve(sb, dbl, lambda: len(dbl.alerts) >= 2, timeout=900)
    console = sb.console_text()
    assert ("announce", V2, zcl.BOOT_ACTIVATED) in dbl.events, (dbl.events[-6:], console[-3000:])
    assert "agent: crashed" not in console, console[-3000:]


def test_sim_boots_from_unpacked_files_without_the_in_process_micropython(tmp_path, monkeypatch):
    # another MicroPython binary cannot have the slot mapped: the runner unpacks it instead
    sb, dbl = _board(tmp_path, _app(V2))
    with sb:
        assert sb.wait_for("boot", timeout=30)["xip"] is True
    monkeypatch.setenv("HANOTA_MICROPYTHON", paths.venv_bin("micropython"))
    sb.heap = "160k"  # every module's bytecode now in the heap (docs/simulated-board.md)
    n = len(sb.events)
    with sb:
        assert sb.wait_for("boot", timeout=30, after=n)["xip"] is False
        _serve(sb, dbl, lambda: any(e[0] == "announce" for e in dbl.events), timeout=30)
    assert (sb.dir / "run" / "otaclient" / "agent.mpy").is_file()
