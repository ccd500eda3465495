"""RigBoard.settle: a run ends when a sim board's flash is quiet, not at once."""

from __future__ import annotations

import asyncio
import time

from hanota.rig import boards


class _Board:
    """ops grows by one per read until `writes` reads have happened (a put in progress)."""

    def __init__(self, writes: int):
        self.writes = writes
        self.reads = 0

    @property
    def ops(self) -> int:
        self.reads += 1
        return min(self.reads, self.writes)


def _sim(runner: _Board) -> boards.LocalSim:
    return boards.LocalSim(runner, {"board": "sim-ppmid"})


def test_settle_waits_for_the_last_flash_write_then_a_quiet_spell(monkeypatch):
    monkeypatch.setattr(boards, "QUIET_S", 0.2)
    board = _Board(writes=6)  # ~0.3 s of writes at the 50 ms poll
    t0 = time.monotonic()
    asyncio.run(_sim(board).settle())
    took = time.monotonic() - t0
    assert board.reads > board.writes  # read on past the last write
    assert 0.3 <= took < 2.0  # the writes (~0.2 s), then the quiet spell (0.2 s)


def test_settle_gives_up_on_a_board_that_never_goes_quiet(monkeypatch):
    monkeypatch.setattr(boards, "SETTLE_MAX_S", 0.3)
    t0 = time.monotonic()
    asyncio.run(_sim(_Board(writes=10**9)).settle())
    assert time.monotonic() - t0 < 1.0


def test_settle_returns_at_once_for_a_real_board():
    t0 = time.monotonic()
    asyncio.run(boards.LocalReal("/dev/null", {"board": "ihd-esp32"}).settle())
    assert time.monotonic() - t0 < 0.05
