"""Input-derived chunking: the same fuzz input always splits the same way (replayable)."""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterator


def rng_for(data: bytes) -> random.Random:
    """A PRNG seeded by the input itself (CRC-32 and length)."""
    return random.Random(zlib.crc32(data) ^ len(data) << 32)


def chunks(data: bytes, rng: random.Random) -> Iterator[bytes]:
    """data in pieces: whole, byte by byte (short inputs), small or large random sizes."""
    mode = rng.randrange(4)
    if mode == 1 and len(data) > 512:
        mode = 2
    i = 0
    while i < len(data):
        n = (len(data), 1, rng.randint(1, 16), rng.randint(1, 400))[mode]
        yield data[i : i + n]
        i += n
