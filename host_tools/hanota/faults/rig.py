"""CampaignRig: the rig hub (hanota.rig.session.RigHub) plus what a fault campaign needs
and a test bench does not: heal a board's line (relink without faults), restart the hub
from its event log mid-transfer, and count the WAIT_FOR_DATA answers it gives.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from otaclient import zcl

from hanota.hub import Hub
from hanota.link.faults import Faults
from hanota.rig.session import BoardLink, RigHub

_BYTES = ("bytes_in", "bytes_out")


class CampaignRig(RigHub):
    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.restarts = 0
        self.wait_for_data = 0
        self.counts: Counter[str] = Counter()  # fault counters of lines already unplugged
        self._down: dict[str, int] = {}  # hub-to-board bytes of lines already unplugged
        self._count_waits()

    def _fold(self, b: BoardLink) -> None:
        if b.emulator is None:
            return
        for d in b.emulator.stats().values():
            self.counts.update({k: v for k, v in d.items() if k not in _BYTES})
        self._down[b.name] = self._down.get(b.name, 0) + b.emulator.stats()["b2a"]["bytes_in"]

    def downstream(self, name: str) -> int:
        """Bytes the hub sent towards the board so far, over every line it had."""
        b = self.boards.get(name)
        now = b.emulator.stats()["b2a"].get("bytes_in", 0) if b and b.emulator else 0
        return self._down.get(name, 0) + now

    def fault_counts(self) -> dict[str, int]:
        total = Counter(self.counts)
        for b in self.boards.values():
            if b.emulator is not None:
                for d in b.emulator.stats().values():
                    total.update({k: v for k, v in d.items() if k not in _BYTES})
        return dict(total)

    def _count_waits(self) -> None:
        """Wrap this hub's block answers to count WAIT_FOR_DATA (instrumentation only)."""
        ota = self.hub.ota
        block = ota.block

        def counted(*args: Any, **kw: Any) -> Any:
            rsp = block(*args, **kw)
            if rsp.status == zcl.WAIT_FOR_DATA:
                self.wait_for_data += 1
            return rsp

        ota.block = counted

    async def relink(self, name: str, faults: Faults | None = None) -> BoardLink:
        """Unplug the board's emulated line and plug a new one (e.g. without faults)."""
        b = self.boards.pop(name)
        self._fold(b)
        await self._unlink(b)
        return await self.add(b.board, faults)

    async def restart_hub(self, down_s: float, faults: Faults | None = None) -> None:
        """Stop serving every link, close the hub, wait down_s, then a new Hub on the same
        state directory (the event log replayed, as after `kill -9` of `hanota hub serve`)
        serves the same boards again."""
        boards = list(self.boards.values())
        for b in boards:
            self._fold(b)
            await self._unlink(b)
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        old = self.hub
        old.close()
        await asyncio.sleep(down_s)
        self.hub = Hub(old.config, state_dir=old.state_dir)
        self._count_waits()
        self.hub.started()
        self._tasks.append(asyncio.create_task(self.hub.alert_loop()))
        self.boards.clear()
        for b in boards:
            await self.add(b.board, faults)
        self.restarts += 1
