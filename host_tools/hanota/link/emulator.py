"""A link emulator between two byte streams: line rate, one-way latency, faults.

Each direction is independent (full duplex). A byte leaves at
max(arrival, line free) + its serialization time, and is delivered latency_s later, so
several frames can be in flight at once. It never parses frames beyond finding the link
delimiter for frame faults (faults.py) and store-and-forward profiles.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from dataclasses import dataclass, field

from hanota.link import profiles
from hanota.link.faults import FaultInjector, Faults
from hanota.link.profiles import LinkProfile

_READ = 4096
_IDLE_S = 0.02  # input idle this long: release frames held for reordering / a delimiter
_PIECE_S = 0.005  # deliver paced bytes in pieces of about this much line time
_BACKLOG_S = 0.25  # stop reading once this much line time is queued (sender back-pressure)


@dataclass
class Direction:
    """One way through the emulator: its faults, its line and its counters."""

    name: str
    injector: FaultInjector
    queue: asyncio.Queue[tuple[bytes | None, float]] = field(
        default_factory=lambda: asyncio.Queue()
    )
    line_free: float = 0.0
    stats: Counter[str] = field(default_factory=Counter)


class LinkEmulator:
    """Relay side a <-> side b through `profile` with `faults`.

    run(reader_a, writer_a, reader_b, writer_b) relays until either side reaches EOF
    (after delivering what that side sent) or close() is called. stats() gives byte and
    fault counters per direction ("a2b", "b2a").
    """

    def __init__(self, profile: LinkProfile | str, faults: Faults | None = None) -> None:
        self.profile = profiles.get(profile) if isinstance(profile, str) else profile
        self.faults = faults or Faults()
        framed = self.profile.store_and_forward
        self.dirs = {
            name: Direction(name, FaultInjector(self.faults, name, framed=framed))
            for name in ("a2b", "b2a")
        }
        self._pulls = sorted(self.faults.cable_pulls)
        self._down_until = 0.0
        self._total_in = 0
        self._closed = asyncio.Event()

    def stats(self) -> dict[str, dict[str, int]]:
        return {name: dict(d.stats) | dict(d.injector.counts) for name, d in self.dirs.items()}

    def pull_cable(self, duration_s: float) -> None:
        """Deliver nothing for duration_s (both ways); bytes in flight are lost."""
        now = asyncio.get_running_loop().time()
        self._down_until = max(self._down_until, now + duration_s)

    def close(self) -> None:
        self._closed.set()

    async def run(
        self,
        reader_a: asyncio.StreamReader,
        writer_a: asyncio.StreamWriter,
        reader_b: asyncio.StreamReader,
        writer_b: asyncio.StreamWriter,
    ) -> None:
        a2b, b2a = self.dirs["a2b"], self.dirs["b2a"]
        tasks = [
            asyncio.create_task(self._pump(a2b, reader_a)),
            asyncio.create_task(self._pump(b2a, reader_b)),
        ]
        delivery = [
            asyncio.create_task(self._deliver(a2b, writer_b)),
            asyncio.create_task(self._deliver(b2a, writer_a)),
        ]
        closed = asyncio.create_task(self._closed.wait())
        try:
            await asyncio.wait(delivery + [closed], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks + delivery + [closed]:
                t.cancel()
            for t in tasks + delivery + [closed]:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t

    async def _pump(self, d: Direction, reader: asyncio.StreamReader) -> None:
        while True:
            try:
                data = await asyncio.wait_for(reader.read(_READ), _IDLE_S)
            except TimeoutError:
                await self._send(d, d.injector.flush())
                continue
            except (OSError, ConnectionError):
                data = b""  # a pty whose other end closed reads as EIO
            if not data:
                await self._send(d, d.injector.flush())
                await d.queue.put((None, 0.0))
                return
            d.stats["bytes_in"] += len(data)
            self._check_pulls(len(data))
            await self._send(d, d.injector.feed(data))

    def _check_pulls(self, n: int) -> None:
        self._total_in += n
        while self._pulls and self._total_in >= self._pulls[0][0]:
            self.pull_cable(self._pulls.pop(0)[1])

    async def _send(self, d: Direction, chunks: list[bytes]) -> None:
        """Schedule chunks on d's line: serialization after the line frees, then latency."""
        loop = asyncio.get_running_loop()
        p = self.profile
        step = max(1, int(p.baud * _PIECE_S)) if p.baud else _READ
        for chunk in chunks:
            pieces = [chunk] if p.store_and_forward else _split(chunk, step)
            for piece in pieces:
                while d.line_free - loop.time() > _BACKLOG_S:
                    await asyncio.sleep(d.line_free - loop.time() - _BACKLOG_S / 2)
                start = max(loop.time(), d.line_free)
                d.line_free = start + p.seconds(len(piece))
                await d.queue.put((piece, d.line_free + p.latency_s))

    async def _deliver(self, d: Direction, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        while True:
            piece, due = await d.queue.get()
            if piece is None:
                return
            if (delay := due - loop.time()) > 0:
                await asyncio.sleep(delay)
            if loop.time() < self._down_until:
                d.stats["bytes_lost"] += len(piece)
                continue
            writer.write(piece)
            await writer.drain()
            d.stats["bytes_out"] += len(piece)


def _split(chunk: bytes, step: int) -> list[bytes]:
    return [chunk[i : i + step] for i in range(0, len(chunk), step)]


async def relay_fds(fd_a: int, fd_b: int, emulator: LinkEmulator) -> None:
    """Run `emulator` between two open fds (e.g. two pty masters) until EOF or close()."""
    from hanota.link.transport import open_fd

    reader_a, writer_a = await open_fd(fd_a)
    reader_b, writer_b = await open_fd(fd_b)
    try:
        await emulator.run(reader_a, writer_a, reader_b, writer_b)
    finally:
        writer_a.close()
        writer_b.close()
