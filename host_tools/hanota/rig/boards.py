"""The one board interface of the rig, in labgrid's shape: resources (console, HAN link,
power) reached through drivers, and a strategy that moves a board off -> flashed ->
provisioned -> running. The update flow, the fixtures, bench, faults and sweep hold a
`RigBoard` and never ask which kind it is; what a kind cannot tell (a real board's flash
operations) it answers with nothing.

Three kinds: `LocalSim` (a sim board's runner on this machine), `LocalReal` (a board on
this machine's serial ports) and `rig.lgboard.LabgridBoard` (a labgrid place, any host).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

from hanota.link.faults import Faults

if TYPE_CHECKING:
    from .session import BoardLink, RigHub

QUIET_S = 0.5  # a sim board whose flash is this long untouched is done with the update
SETTLE_MAX_S = 10.0
STATES = ("off", "flashed", "provisioned", "running")


class RigBoard:
    """A board the rig can power, link to its hub and read. Subclasses set `name`,
    `record` (the provisioning record the hub enrols) and `state` (one of STATES)."""

    name: str
    record: dict[str, Any]
    state: str = "off"

    async def attach(self, rig: RigHub, faults: Faults | None = None) -> BoardLink:
        """Enrol the board with the rig's hub and serve its HAN link."""
        raise NotImplementedError

    def power(self, on: bool) -> None:
        raise NotImplementedError

    def power_cycle(self) -> None:
        self.power(False)
        self.power(True)

    def console_output(self) -> bytes | None:
        """What the board printed during the run; None when nobody read its console."""
        return None

    def running_version(self, reported: int | None) -> int | None:
        """The version the board runs, known from outside the agent where the kind can
        (a sim's bootloader); otherwise the version the board reported."""
        return reported

    def facts(self) -> dict[str, Any]:
        """Counts only this kind of board can give, for the summary."""
        return {}

    async def settle(self) -> None:
        """Return once the board is done writing after an update (a no-op where nothing
        counts its flash operations)."""

    def stop(self) -> None:
        """Leave the board: stop what the rig started for it."""


class LocalSim(RigBoard):
    """A sim board on this machine: `sim` is its SimBoard (runner, flash, events)."""

    def __init__(self, sim: Any, record: dict[str, Any], name: str | None = None):
        self.sim, self.record = sim, record
        self.name = name or record["board"]
        self.state = "running"  # the rig is handed started sim boards

    async def attach(self, rig: RigHub, faults: Faults | None = None) -> BoardLink:
        return await rig.link_emulated(self, self.sim.han_path, faults)

    def power(self, on: bool) -> None:
        if on:
            self.sim.start()
        else:
            self.sim.stop()

    def power_cycle(self) -> None:
        self.sim.power_cycle()

    def console_output(self) -> bytes | None:
        try:
            return self.sim.console_log.read_bytes()
        except OSError:
            return None

    def running_version(self, reported: int | None) -> int | None:
        return self.sim.running_version

    def facts(self) -> dict[str, Any]:
        events = [e["event"] for e in self.sim.events]
        return {"boots": self.sim.boot_count, "power_cuts": events.count("power_cut")}

    async def settle(self) -> None:
        """Wait until the flash is quiet. What the hub waits for comes before the board's
        last writes (it persists each alert acknowledgement it gets), so a run that stopped
        the board at once ended anywhere in them: its flash operation count, which the
        power-cut sweep plans cuts by, varied from run to run."""
        end = time.monotonic() + SETTLE_MAX_S
        last, since = self.sim.ops, time.monotonic()
        while time.monotonic() < end and time.monotonic() - since < QUIET_S:
            await asyncio.sleep(0.05)
            if self.sim.ops != last:
                last, since = self.sim.ops, time.monotonic()

    def stop(self) -> None:
        self.sim.stop()


class ConsoleRead(RigBoard):
    """A board whose console the rig reads with console.ConsoleCapture (a serial device
    or a URL) while it runs: the heap report and crash tracebacks come from it."""

    _capture: Any = None

    def read_console(self, port: str, baud: int = 115200) -> None:
        from .console import ConsoleCapture

        self._capture = ConsoleCapture(port, baud).__enter__()

    def console_output(self) -> bytes | None:
        return self._capture.text() if self._capture is not None else None

    def facts(self) -> dict[str, Any]:
        text = self.console_output()
        return {"console_bytes": len(text)} if text is not None else {}

    def stop(self) -> None:
        if self._capture is not None:
            with contextlib.suppress(Exception):
                self._capture.__exit__(None, None, None)
            self._capture = None


class LocalReal(ConsoleRead):
    """A real board on this machine: its HAN UART `port` (served directly, no emulator)
    and, when given, its console read for the heap report.
    Flashing and provisioning are `hanota board flash`'s; the rig finds it running."""

    def __init__(self, port: str, record: dict[str, Any], baud: int = 115200,
                 console: str | None = None, console_baud: int = 115200):  # fmt: skip
        self.port, self.record, self.baud = port, record, baud
        self.name = record["board"]
        self.state = "running"
        if console:
            self.read_console(console, console_baud)

    async def attach(self, rig: RigHub, faults: Faults | None = None) -> BoardLink:
        return await rig.link_stream(self, self.port, self.baud)

    def power(self, on: bool) -> None:
        raise NotImplementedError(
            "a local real board has no power switch the rig drives: use a labgrid place"
        )
