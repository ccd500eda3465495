"""Port conformance from pytest: drive firmware/ports/conformance.py on a sim board, boot
after boot, and collect one result per check (name -> "" when it passed, else why).

The board's apps (factory and known-good) both run STEP_MAIN: at every boot it runs the
steps the driver wrote to DIR/fs/conformance_steps.json, printing PASS/FAIL lines.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from hanota.sim.runner import SimBoard
from simapps import board_json, build_app, make_board

STEP_MAIN = """
import json
from ports import make_port
from ports.conformance import step
port = make_port()
try:
    steps = json.load(open("conformance_steps.json"))
except OSError:
    steps = []
for s in steps:
    step(port, *s)
print("STEPS DONE")
import time
while True:
    time.sleep_ms(100)
"""

CHECK_NAMES = ("contract", "geometry", "round_trip", "write_unerased", "bounds", "app_refused",
               "store", "link", "clock", "version", "feed_unarmed")  # fmt: skip
REBOOT_NAMES = ("clock_fresh", "stage_app", "trial_boot", "confirm", "rearm",
                "confirm_keeps_armed", "watchdog_rollback")  # fmt: skip
ALL_NAMES = CHECK_NAMES + REBOOT_NAMES
PREV, GOOD = 0x01000000, 0x01000101
WATCHDOG_MS = 1500


def parse(text: str) -> dict[str, str]:
    results: dict[str, str] = {}
    for line in text.replace("\r", "").split("\n"):
        if line.startswith("PASS "):
            results[line[5:].strip()] = ""
        elif line.startswith("FAIL "):
            name, _, why = line[5:].partition(": ")
            results[name.strip()] = why or "failed"
    return results


class Driver:
    """One sim board running the step sequence."""

    def __init__(self, tmp: Path, main: str = STEP_MAIN) -> None:
        self.dir = make_board(tmp, main, version=PREV)
        self.good = tmp / "good.bin"
        self.good.write_bytes(build_app(tmp, "good", main, GOOD, board_json(self.dir)))
        (self.dir / "fs").mkdir(exist_ok=True)
        self.board = SimBoard(self.dir)
        self.results: dict[str, str] = {}
        self._seen = 0

    def steps(self, *steps: list) -> None:
        (self.dir / "fs" / "conformance_steps.json").write_text(json.dumps(list(steps)))

    def wait(self, text: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.board.console_text()
            at = out.find(text, self._seen)
            if at >= 0:
                chunk, self._seen = out[self._seen : at], at + len(text)
                self.results.update(parse(chunk))
                return chunk
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not on the console within {timeout}s:\n"
                             f"{self.board.console_text()[self._seen:]}")  # fmt: skip

    def run(self) -> dict[str, str]:
        """The whole sequence; the results so far if a step never finishes."""
        b = self.board
        try:
            self.steps(["clock_fresh"], *[[n] for n in CHECK_NAMES],
                       ["stage_app", str(self.good), self.good.stat().st_size, GOOD])  # fmt: skip
            b.start()
            self.wait("STEPS DONE")
            self.steps(["trial_boot", GOOD], ["confirm"], ["rearm", PREV])
            b.power_cycle()
            self.wait("STEPS DONE")
            self.steps(["confirm_keeps_armed"], ["watchdog", WATCHDOG_MS])
            b.power_cycle()
            self.wait("WATCHDOG ARMED")
            self.steps(["watchdog_rollback", GOOD])
            n = len(b.events)
            b.wait_for("watchdog", timeout=WATCHDOG_MS / 1000 + 10, after=n)
            self.wait("STEPS DONE")
        except (AssertionError, TimeoutError) as exc:
            self.results.setdefault("_driver", str(exc))
        finally:
            b.stop()
        return self.results
