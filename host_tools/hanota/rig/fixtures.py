"""What the pytest fixtures hand to tests: a hub served on a background event loop
(usable from plain synchronous tests), boards to link to it, and fault injection.

Built on session.RigHub; the plugin (plugin.py) only declares the fixtures.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hanota.hub import HubConfig
from hanota.link.faults import Faults

from . import simboards
from .boards import LocalReal, LocalSim, RigBoard
from .factory import Images
from .session import BoardLink, RigHub


class HubThread:
    """A RigHub on its own event loop thread. Hub calls go through `call()`."""

    def __init__(self, state_dir: Path, profile: str = "direct", **config: Any):
        config.setdefault("confirm_delay_s", 2.0)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.rig: RigHub = self._run(self._enter(state_dir, profile, HubConfig(**config)))

    async def _enter(self, state_dir: Path, profile: str, cfg: HubConfig) -> RigHub:
        return await RigHub(state_dir, cfg, profile).__aenter__()

    def _run(self, coro: Any, timeout: float = 60.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @property
    def hub(self) -> Any:
        return self.rig.hub

    def call(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        """Run fn(*args) on the hub's loop (thread-safe) and return its result."""

        async def go() -> Any:
            return fn(*args, **kw)

        return self._run(go())

    def attach(self, board: RigBoard, faults: Faults | None = None) -> BoardLink:
        """Enrol a board and serve its HAN link (a local sim's through the emulator)."""
        return self._run(self.rig.add(board, faults))

    def attach_port(self, path: str, record: dict[str, Any], baud: int = 115200) -> BoardLink:
        return self._run(self.rig.add(LocalReal(path, record, baud)))

    def pull_cable(self, name: str, seconds: float) -> None:
        emu = self.rig.boards[name].emulator
        if emu is not None:
            self.loop.call_soon_threadsafe(emu.pull_cable, seconds)

    def wait(self, pred: Callable[[], Any], timeout: float = 60.0, what: str = "it") -> Any:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            got = self.call(pred)
            if got:
                return got
            time.sleep(0.05)
        raise TimeoutError(f"timed out after {timeout} s waiting for {what}")

    def close(self) -> None:
        try:
            self._run(self.rig.__aexit__(None, None, None))
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)


class SimRigBoard(LocalSim):
    """A fresh provisioned sim board; `start()` boots it."""

    def __init__(self, directory: Path, board: str, trust: list[Path], suppliers: list[str],
                 short_addr: int, factory_version: int, heap: str | None = None,
                 agent_config: dict[str, Any] | None = None):  # fmt: skip
        self.ident, record = simboards.fresh(
            directory, board, factory_version=factory_version, trust=trust,
            suppliers=suppliers, seed=f"fixture:{directory}", short_addr=short_addr,
            agent_config=agent_config,
        )  # fmt: skip
        from hanota.sim.runner import SimBoard

        super().__init__(SimBoard(directory, heap=heap), record, f"{board}-{short_addr}")

    def start(self) -> SimRigBoard:
        self.sim.start()
        return self


class RealBoard(LocalReal):
    """A real board given by --board-port/--hub-port and its provisioning record."""

    def __init__(self, console: str, hub_port: str | None, record: dict[str, Any] | None):
        super().__init__(hub_port or "", record or {"board": "real"})
        self.name, self.console = "real", console


__all__ = ["HubThread", "Images", "RealBoard", "SimRigBoard"]
