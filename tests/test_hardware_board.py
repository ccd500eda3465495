"""Real-board checks; run only with --board-port (and --board-name, default ihd-esp32):

    pytest -m hardware --board-port /dev/ttyUSB0 --board-name ihd-esp32 tests/test_hardware_board.py

They deploy the agent tree, run the port conformance checks on the board with mpremote
(each its own result; with --board-app APP --board-app-version V --board-prev-version P
also the steps across reboots: stage a known-good app, trial boot, confirm, confirm keeps
an armed slot, watchdog rollback), and provision to a throwaway store name. Destructive to
the update slot only; the reboot steps leave APP running, confirmed."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from hanota.paths import mpremote
from port_conformance import ALL_NAMES, CHECK_NAMES, REBOOT_NAMES, parse

pytestmark = pytest.mark.hardware
HANOTA = str(Path(sys.executable).parent / "hanota")
CONFORM = """
from ports import make_port
from ports.conformance import run_conformance
run_conformance(make_port())
"""
STEP = """
from ports import make_port
from ports.conformance import step
port = make_port()
for s in {steps!r}:
    step(port, *s)
print("STEPS DONE")
"""


@pytest.fixture(scope="module")
def board(request) -> tuple[str, str]:
    return request.config.getoption("--board-port"), request.config.getoption(
        "--board-name"
    ) or "ihd-esp32"


def test_deploy_to_the_board(board):
    port, name = board
    res = subprocess.run([HANOTA, "board", "deploy", "--board", name, "--port", port, "--json"],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert res.returncode == 0, res.stderr


def test_conformance_suite_on_the_board(board, tmp_path):
    port, _ = board
    script = tmp_path / "conform.py"
    script.write_text(CONFORM)
    res = subprocess.run([mpremote(), "connect", port, "run", str(script)],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    n = len(CHECK_NAMES)
    assert f"CONFORMANCE {n}/{n}" in res.stdout, res.stdout + res.stderr


def _mpremote(port: str, *args: str, timeout: float = 120) -> str:
    try:
        res = subprocess.run([mpremote(), "connect", port, *args], capture_output=True,
                             text=True, timeout=timeout)  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout or b""
        return out.decode(errors="replace") if isinstance(out, bytes) else out
    return res.stdout + res.stderr


def _steps(port: str, tmp: Path, *steps: list, timeout: float = 120) -> str:
    script = tmp / "steps.py"
    script.write_text(STEP.format(steps=[list(s) for s in steps]))
    return _mpremote(port, "run", str(script), timeout=timeout)


@pytest.fixture(scope="module")
def board_results(board, request, tmp_path_factory) -> dict[str, str]:
    """Every check on the real board, one mpremote run each; the reboot steps when a
    known-good app is given. name -> "" (passed) or why it failed."""
    port, _ = board
    tmp = tmp_path_factory.mktemp("hw-conformance")
    results: dict[str, str] = {}
    for name in CHECK_NAMES:
        results.update(parse(_steps(port, tmp, [name])))
    app = request.config.getoption("--board-app")
    if not app:
        return results
    version = int(request.config.getoption("--board-app-version"), 0)
    prev = int(request.config.getoption("--board-prev-version"), 0)
    size = Path(app).stat().st_size
    _mpremote(port, "fs", "cp", app, ":/conformance_app.bin", timeout=600)
    _mpremote(port, "reset")  # a chip reset: the clock reads as after power-on
    time.sleep(3)
    results.update(parse(_steps(port, tmp, ["clock_fresh"],
                                ["stage_app", "/conformance_app.bin", size, version])))  # fmt: skip
    _mpremote(port, "fs", "rm", ":/conformance_app.bin")
    _mpremote(port, "reset")
    time.sleep(5)
    results.update(parse(_steps(port, tmp, ["trial_boot", version], ["confirm"],
                                ["rearm", prev])))  # fmt: skip
    _mpremote(port, "reset")
    time.sleep(5)
    out = _steps(port, tmp, ["confirm_keeps_armed"], ["watchdog", 3000], timeout=15)
    results.update(parse(out))
    time.sleep(10)  # the watchdog resets the board; the bootloader rolls back
    results.update(parse(_steps(port, tmp, ["watchdog_rollback", version])))
    return results


@pytest.mark.parametrize("name", ALL_NAMES)
def test_conformance_check_on_the_board(board_results, request, name):
    if name in REBOOT_NAMES and not request.config.getoption("--board-app"):
        pytest.skip("the reboot steps need --board-app, --board-app-version, --board-prev-version")
    assert name in board_results, f"{name} never ran: {board_results}"
    assert board_results[name] == "", board_results[name]


def test_provision_over_the_console(board, tmp_path):
    port, name = board
    res = subprocess.run([HANOTA, "board", "provision", "--board", name, "--port", port,
                          "--record", str(tmp_path / "rec.json"), "--json"],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert res.returncode == 0, res.stderr
    ls = subprocess.run([mpremote(), "connect", port, "fs", "ls", ":/data"],
                        capture_output=True, text=True, timeout=60)  # fmt: skip
    assert "identity.json" in ls.stdout and "trust.json" in ls.stdout
