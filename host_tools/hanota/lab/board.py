"""One board of a lab host: its sim board, its console and HAN endpoints, its outlet.

Power on starts a new SimBoard on the board's directory (its flash file is what it
boots) and attaches both endpoints to the new ptys once it has booted; power off is a
cut: SimBoard.stop() kills MicroPython wherever it is, and the endpoints detach (their
clients stay connected).
"""

from __future__ import annotations

import threading
from pathlib import Path

from ..output import log
from ..sim.runner import SimBoard
from .bridge import Endpoint

BOOT_TIMEOUT_S = 30.0


class LabBoard:
    def __init__(self, name: str, directory: Path, console_port: int, han_port: int) -> None:
        self.name = name
        self.dir = Path(directory)
        self.console = Endpoint(f"{name} console", console_port)
        self.han = Endpoint(f"{name} han", han_port)
        self.sim: SimBoard | None = None
        self._lock = threading.Lock()

    @property
    def powered(self) -> bool:
        return self.sim is not None

    def power(self, on: bool) -> None:
        with self._lock:
            if on and self.sim is None:
                self._on()
            elif not on and self.sim is not None:
                self._off()

    def _on(self) -> None:
        sim = SimBoard(self.dir).start()
        self.sim = sim
        boot = sim.wait_for("boot", timeout=BOOT_TIMEOUT_S)
        self.console.attach(sim.console_path)
        self.han.attach(sim.han_path)
        log(f"lab: {self.name}: power on, booted {boot['slot']} version {boot['version']:#010x}")

    def _off(self) -> None:
        sim, self.sim = self.sim, None
        assert sim is not None
        self.console.detach()
        self.han.detach()
        sim.stop()
        log(f"lab: {self.name}: power off")

    def close(self) -> None:
        self.power(False)
        self.console.close()
        self.han.close()
