"""Seeded, reproducible link faults on one direction of a byte stream.

Frame faults (drop, duplicate, reorder, truncate) find frame boundaries at the link
delimiter (0x00, otaclient.link); bit errors hit the bytes that go on the wire. The same
seed and the same input bytes give the same output, whatever the read chunking.
No timing here: the emulator paces what this returns.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass

from otaclient.link import DELIMITER


@dataclass(frozen=True)
class Faults:
    """What to break. Rates are probabilities per frame, except ber (per bit).

    cable_pulls: (after_bytes, duration_s) pairs: once that many bytes have entered the
    emulator (both directions together), nothing is delivered for duration_s; bytes in
    flight and sent meanwhile are lost, as when a cable is pulled and plugged back.
    """

    seed: int = 0
    ber: float = 0.0
    drop: float = 0.0
    dup: float = 0.0
    reorder: float = 0.0
    truncate: float = 0.0
    cable_pulls: tuple[tuple[int, float], ...] = ()

    @property
    def frame_faults(self) -> bool:
        return any((self.drop, self.dup, self.reorder, self.truncate))


class FaultInjector:
    """Applies Faults to one direction; feed() returns the chunks to put on the wire."""

    def __init__(self, faults: Faults, direction: str, framed: bool = False) -> None:
        self.faults = faults
        self.framed = framed or faults.frame_faults
        self.counts: Counter[str] = Counter()
        self._rng = random.Random(f"{faults.seed}:{direction}:frames")
        self._bit_rng = random.Random(f"{faults.seed}:{direction}:bits")
        self._partial = bytearray()
        self._held: bytes | None = None
        self._bit_pos = 0  # bits that went on the wire so far
        self._next_error = self._gap()

    def feed(self, data: bytes) -> list[bytes]:
        if not self.framed:
            return [self._flip(bytes(data))] if data else []
        self._partial += data
        out: list[bytes] = []
        while (end := self._partial.find(DELIMITER)) >= 0:
            frame = bytes(self._partial[: end + 1])
            del self._partial[: end + 1]
            out += self._frame(frame)
        return [self._flip(c) for c in out]

    def flush(self) -> list[bytes]:
        """Release what waits for a delimiter or a successor (called when input idles)."""
        out = [self._held] if self._held is not None else []
        self._held = None
        if self._partial:
            out.append(bytes(self._partial))
            self._partial.clear()
        return [self._flip(c) for c in out]

    def _frame(self, frame: bytes) -> list[bytes]:
        if len(frame) < 3:  # an idle delimiter: never faulted
            return [frame]
        f = self.faults
        # Always draw the same numbers per frame so one fault never shifts the others.
        r_drop, r_trunc, r_dup, r_reorder, r_cut = (self._rng.random() for _ in range(5))
        if r_drop < f.drop:
            self.counts["dropped"] += 1
            return []
        if r_trunc < f.truncate:
            self.counts["truncated"] += 1
            frame = frame[: 1 + int(r_cut * (len(frame) - 2))] + DELIMITER
        out = [frame, frame] if r_dup < f.dup else [frame]
        self.counts["duplicated"] += len(out) - 1
        if self._held is not None:
            out.append(self._held)
            self._held = None
        elif r_reorder < f.reorder:
            self.counts["reordered"] += 1
            self._held, out = out[-1], out[:-1]
        return out

    def _gap(self) -> float:
        # Geometric gap to the next flipped bit: one draw per error, not per bit.
        ber = self.faults.ber
        if ber <= 0:
            return math.inf
        if ber >= 1:
            return self._bit_pos + 1
        u = self._bit_rng.random()
        return self._bit_pos + math.floor(math.log1p(-u) / math.log1p(-ber)) + 1

    def _flip(self, chunk: bytes) -> bytes:
        end = self._bit_pos + 8 * len(chunk)
        if self._next_error >= end:
            self._bit_pos = end
            return chunk
        buf = bytearray(chunk)
        base = self._bit_pos
        while self._next_error < end:
            bit = int(self._next_error) - base
            buf[bit // 8] ^= 1 << (bit % 8)
            self.counts["bit_errors"] += 1
            self._bit_pos = int(self._next_error)
            self._next_error = self._gap()
        self._bit_pos = end
        return bytes(buf)
