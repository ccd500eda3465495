"""Link profiles shared by the rig, the hub and the bench: line rate, latency, block size.

A profile only describes a link; `emulator.LinkEmulator` makes one behave like it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LinkProfile:
    """One emulated link.

    baud: line rate in *bytes* per second (0 = unpaced); a UART at 115200 baud 8N1 moves
    10 bits per byte, so 11520. latency_s: one-way delay added after a byte (or, with
    store_and_forward, a whole frame) has been serialized; frames may be in flight
    together (pipelining). max_block: the largest Image Block data size to ask for.
    store_and_forward: deliver whole frames (a radio packet) rather than a byte stream.
    """

    name: str
    baud: float
    latency_s: float
    max_block: int
    store_and_forward: bool = False
    description: str = ""

    def seconds(self, nbytes: int) -> float:
        """Time to serialize nbytes on this line (0 when unpaced)."""
        return nbytes / self.baud if self.baud else 0.0


PROFILES: dict[str, LinkProfile] = {
    p.name: p
    for p in (
        LinkProfile("direct", 0, 0.0, 254, description="no pacing, no latency"),
        LinkProfile("uart-115200", 11520, 0.002, 254, description="115200 8N1, 2 ms one-way"),
        LinkProfile("uart-921600", 92160, 0.002, 254, description="921600 8N1, 2 ms one-way"),
        LinkProfile(
            "han",
            31250,
            0.020,
            40,
            store_and_forward=True,
            description="ZigBee-like: 250 kbit/s, 40-byte blocks, 20 ms one-way per frame",
        ),
    )
}
DEFAULT = "direct"


def names() -> list[str]:
    return list(PROFILES)


def get(name: str) -> LinkProfile:
    """The profile called `name`; ValueError naming the known ones otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(
            f"unknown link profile {name!r}; known profiles: {', '.join(PROFILES)}"
        ) from None
