"""A hub in process with boards linked to it (rig.boards.RigBoard): a local sim board's
HAN pty through the link emulator (profile + faults); a real board's HAN UART, or a link
exported by URL (a labgrid place's), served directly. Used by `hanota rig`, the pytest
fixtures, the demo, bench, faults and sweep.

Wiring only: the hub decides, the emulator paces, the board updates itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hanota.hub import Hub, HubConfig
from hanota.hub.server import LinkSession, serve_path
from hanota.link import profiles
from hanota.link.emulator import LinkEmulator
from hanota.link.faults import Faults
from hanota.link.transport import open_link, open_serial

from .boards import LocalSim, RigBoard

RETRY_S = 1.0  # a served link that closed is reopened this often


@dataclass
class BoardLink:
    """One board on the rig hub."""

    name: str
    record: dict[str, Any]
    board: RigBoard
    emulator: LinkEmulator | None = None  # a local sim's line (profile, faults)
    session: LinkSession | None = None
    tasks: list[asyncio.Task] = field(default_factory=list)
    closed_bytes: int = 0  # link bytes of the sessions before the current one (reopened)

    @property
    def eui(self) -> str:
        return self.record["eui64"]

    def link_bytes(self) -> int:
        if self.emulator is None:
            return self.closed_bytes + _session_bytes(self.session)
        return sum(d.get("bytes_out", 0) for d in self.emulator.stats().values())


class RigHub:
    """`async with RigHub(...) as rig:` a served hub; `await rig.add(board)` boards.

    With `trust` (manufacturer public keys), the hub verifies submissions against them as
    a served hub does. Without, it does not check images: a rig exists to put any image,
    hostile ones included, in front of a board and see the board's own defences hold."""

    def __init__(self, state_dir: Path | None = None, config: HubConfig | None = None,
                 profile: str = profiles.DEFAULT, trust: list[Path] | None = None):  # fmt: skip
        self.profile = profiles.get(profile)
        cfg = config or HubConfig(confirm_delay_s=3.0)
        cfg.block_size = min(cfg.block_size, self.profile.max_block)
        cfg.check_images = bool(trust)
        self.hub = Hub(cfg, state_dir=state_dir)
        for key in trust or []:
            self.hub.add_anchor(key)
        self.boards: dict[str, BoardLink] = {}
        self._tasks: list[asyncio.Task] = []

    async def __aenter__(self) -> RigHub:
        self.hub.started()
        self._tasks.append(asyncio.create_task(self.hub.alert_loop()))
        return self

    async def __aexit__(self, *exc: object) -> None:
        for b in self.boards.values():
            await self._unlink(b)
            await asyncio.to_thread(b.board.stop)
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.hub.close()

    async def add(self, board: RigBoard, faults: Faults | None = None) -> BoardLink:
        """Enrol a board and serve its HAN link (the board says how: RigBoard.attach)."""
        return await board.attach(self, faults)

    async def add_sim(self, sim: Any, record: dict[str, Any], faults: Faults | None = None,
                      name: str | None = None) -> BoardLink:  # fmt: skip
        """A started SimBoard as a LocalSim board (`add`)."""
        return await self.add(LocalSim(sim, record, name), faults)

    async def link_emulated(self, board: RigBoard, path: str, faults: Faults | None) -> BoardLink:
        """Enrol `board`; serve its HAN pty at `path` through the link emulator."""
        record = board.record
        self.hub.enrol(record)
        b = BoardLink(self._free_name(board.name), record, board)
        ra, wa = await open_serial(path)
        s_emu, s_hub = socket.socketpair()
        rb, wb = await asyncio.open_connection(sock=s_emu)
        rh, wh = await asyncio.open_connection(sock=s_hub)
        b.emulator = LinkEmulator(self.profile, faults)
        b.session = LinkSession(self.hub, f"{b.name}:{path}", rh, wh, record["eui64"])
        b.tasks = [asyncio.create_task(b.emulator.run(ra, wa, rb, wb)),
                   asyncio.create_task(b.session.run())]  # fmt: skip
        b.tasks.append(asyncio.create_task(_close_after(b.tasks[0], [wa, wb, wh])))
        self.boards[b.name] = b
        return b

    async def link_stream(self, board: RigBoard, spec: str, baud: int = 115200) -> BoardLink:
        """Enrol `board`; serve its HAN link directly: a serial device, or a URL
        (`socket://HOST:PORT`, `rfc2217://...`: transport.open_link), as `hanota hub
        serve` does (server.serve_path): a link that goes away (an exporter host lost, an
        adapter unplugged) is reopened every RETRY_S, and the board's next request resumes
        its transfer. The first open's failure is the caller's."""
        self.hub.enrol(board.record)
        b = BoardLink(self._free_name(board.name), board.record, board)
        opened = await open_link(spec, baud)

        def on_session(session: LinkSession) -> None:
            b.closed_bytes += _session_bytes(b.session)
            b.session = session

        b.tasks = [asyncio.create_task(serve_path(self.hub, spec, board.record["eui64"], baud,
                                                  RETRY_S, opened=opened,
                                                  on_session=on_session))]  # fmt: skip
        self.boards[b.name] = b
        return b

    def _free_name(self, board: str) -> str:
        # boards of one definition share its name: the second is "<board>#2", and so on, so
        # that every linked board is in `boards` (and unlinked and stopped on exit)
        n = 1
        name = board
        while name in self.boards:
            n += 1
            name = f"{board}#{n}"
        return name

    async def _unlink(self, b: BoardLink) -> None:
        if b.emulator is not None:
            b.emulator.close()
        for t in b.tasks:
            t.cancel()
        await asyncio.gather(*b.tasks, return_exceptions=True)

    async def wait(self, pred: Callable[[], Any], timeout: float, what: str,
                   poll: float = 0.05) -> Any:  # fmt: skip
        """Poll pred() until truthy; TimeoutError naming `what` otherwise."""
        end = time.monotonic() + timeout
        while True:
            got = pred()
            if got:
                return got
            if time.monotonic() > end:
                raise TimeoutError(f"rig: timed out after {timeout:.0f} s waiting for {what}")
            await asyncio.sleep(poll)

    def heard(self, eui: str) -> bool:
        """The device has announced itself (or queried) since it was enrolled."""
        dev = self.hub.state.devices.get(eui)
        return dev is not None and dev.claimed is not None

    def reported(self, eui: str) -> int | None:
        """The version the device last announced (unauthenticated; None if unknown). The
        version its signed alerts vouch for is the hub inventory's `version`."""
        dev = self.hub.state.devices.get(eui)
        return dev.announced_version if dev is not None else None


def _session_bytes(session: LinkSession | None) -> int:
    if session is None:
        return 0
    c = session.counters()
    return c.get("bytes_in", 0) + c.get("bytes_out", 0)


async def _close_after(task: asyncio.Task, writers: list[Any]) -> None:
    with contextlib.suppress(Exception, asyncio.CancelledError):
        await asyncio.shield(task)
    for w in writers:
        with contextlib.suppress(Exception):
            w.close()
