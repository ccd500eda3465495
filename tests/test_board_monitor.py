"""`hanota board monitor` on a pty: shows what the board prints, and hands the port over
to a flashing/deploy command (SIGUSR1 pause, SIGUSR2 resume) through its pid file."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from hanota.board import monitor

HANOTA = str(Path(sys.executable).parent / "hanota")


def wait_for(path: Path, text: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = path.read_text(errors="replace") if path.exists() else ""
        if text in got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not in {path}: {got!r}")


def test_monitor_shows_output_and_hands_the_port_over(tmp_path):
    master, slave = os.openpty()
    port = os.ttyname(slave)
    out, err = tmp_path / "out", tmp_path / "err"
    with open(out, "wb") as fo, open(err, "wb") as fe:
        proc = subprocess.Popen([HANOTA, "board", "monitor", "--port", port],
                                stdin=subprocess.PIPE, stdout=fo, stderr=fe)  # fmt: skip
    try:
        wait_for(err, "Ctrl-] quits")
        os.write(master, b"MicroPython v1.28 on esp32\r\n>>> ")
        wait_for(out, "MicroPython v1.28")
        with monitor.handed_over(port):
            wait_for(err, "[monitor paused: port handed over]")
        wait_for(err, "[monitor resumed]")
        os.write(master, b"after hand-over\r\n")
        wait_for(out, "after hand-over")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        os.close(master)
        os.close(slave)
