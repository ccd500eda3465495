"""Typed options of `hanota board provision|flash` (board/actions.py takes these; board/cli.py
builds them from the command line). Every field has the default its option has there."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class IdentityOptions:
    """What a new device identity is made of (provision.make_identity) and where its
    device record goes."""

    eui64: str | None = None  # 16 hex digits; None: generated (from `seed` when given)
    seed: str | None = None  # derives EUI-64 and device key (tests and sims only)
    short_addr: int = 0x0001
    ch_addr: int = 0x0000  # the bound Comms Hub
    suppliers: tuple[str, ...] = ()  # none: provision's default supplier
    trust: tuple[Path, ...] = ()  # manufacturer keys; none: the development key
    authority: tuple[Path, ...] = ()  # rotation-authority keys
    record: Path | None = None  # device record; None: the action's default path
    heap_report: bool = False  # agent_config.json with the heap report on


@dataclass(frozen=True)
class ProvisionOptions:
    """`board provision`: exactly one target of store_dir, port and sim."""

    identity: IdentityOptions = field(default_factory=IdentityOptions)
    store_dir: Path | None = None  # write the store files into this directory
    port: str | None = None  # a board's console (mpremote)
    sim: Path | None = None  # a sim board directory
    dry_run: bool = False


@dataclass(frozen=True)
class FlashOptions:
    """`board flash`: a real board (port and firmware) or a sim board (sim_dir)."""

    identity: IdentityOptions = field(default_factory=IdentityOptions)
    port: str | None = None  # a real board's serial port
    firmware: Path | None = None  # merged MicroPython firmware .bin for a real board
    baud: int = 460800  # esptool's write baud
    sim_dir: Path | None = None  # sim boards; None: build/sim/<board>
    dry_run: bool = False
