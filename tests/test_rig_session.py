"""rig.session.RigHub: boards of one definition each get their own link, and all stop."""

from __future__ import annotations

import asyncio
import os
import tty

from hanota.rig import factory
from hanota.rig.session import RigHub


class _Sim:
    """A started sim board as add_sim sees it: a HAN pty, and stop()."""

    def __init__(self) -> None:
        self.master, slave = os.openpty()
        tty.setraw(slave)
        self.han_path = os.ttyname(slave)
        self._slave = slave
        self.stopped = 0

    def stop(self) -> None:
        self.stopped += 1
        for fd in (self.master, self._slave):
            os.close(fd)


def test_boards_of_one_definition_are_all_linked_and_all_stopped(tmp_path):
    sims = [_Sim() for _ in range(3)]
    records = [factory.device("sim-ppmid", ["supplier-a"], seed=f"s{i}", short_addr=i + 1)[1]
               for i in range(3)]  # fmt: skip

    async def go() -> list[str]:
        async with RigHub(tmp_path / "hub") as rig:
            for sim, rec in zip(sims, records, strict=True):
                await rig.add_sim(sim, rec)
            return sorted(rig.boards)

    names = asyncio.run(go())
    assert names == ["sim-ppmid", "sim-ppmid#2", "sim-ppmid#3"]
    assert [s.stopped for s in sims] == [1, 1, 1]
