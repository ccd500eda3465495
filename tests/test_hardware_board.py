"""Real-board checks; run only with --board-port (and --board-name, default ihd-esp32):

    pytest -m hardware --board-port /dev/ttyUSB0 --board-name ihd-esp32 tests/test_hardware_board.py

They deploy the agent tree, run the port conformance suite on the board with mpremote,
and provision to a throwaway store name. Destructive to the update slot only."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hanota.paths import mpremote

pytestmark = pytest.mark.hardware
HANOTA = str(Path(sys.executable).parent / "hanota")
CONFORM = """
from ports import make_port
from ports.conformance import run_conformance
run_conformance(make_port(), otadata=False)
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
    assert "CONFORMANCE 9/9" in res.stdout, res.stdout + res.stderr


def test_provision_over_the_console(board, tmp_path):
    port, name = board
    res = subprocess.run([HANOTA, "board", "provision", "--board", name, "--port", port,
                          "--record", str(tmp_path / "rec.json"), "--json"],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert res.returncode == 0, res.stderr
    ls = subprocess.run([mpremote(), "connect", port, "fs", "ls", ":/data"],
                        capture_output=True, text=True, timeout=60)  # fmt: skip
    assert "identity.json" in ls.stdout and "trust.json" in ls.stdout
