"""Reaching a simulated board the way a real one is reached: create it (or reuse it) in
build/sim/<board>/, start it with the sim runner, talk mpremote to its console pty, stop it.

Only orchestration: the flash file, bootloader and runner are hanota.sim's.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..output import CommandError, log
from ..paths import BUILD

BOOT_TIMEOUT_S = 20.0
SETTLE_S = 0.5


def sim_dir(board: dict[str, Any]) -> Path:
    return BUILD / "sim" / board["name"]


def ensure_created(board: dict[str, Any], directory: Path) -> bool:
    """Create the sim board unless DIR/flash.bin exists; True when created."""
    if (directory / "flash.bin").exists():
        return False
    from hanota.sim import create

    create.create(directory, board["name"])
    log(f"sim: created {board['name']} in {directory}")
    return True


def slot_files(directory: Path) -> dict[str, bytes] | None:
    """The files of the app the sim board boots next (path -> bytes), flash unchanged;
    None when there is no board in `directory` yet."""
    from hanota.board import defs
    from hanota.sim import appimage, bootloader
    from hanota.sim.flash import FlashFile

    if not (directory / "flash.bin").exists():
        return None
    flash = FlashFile(directory / "flash.bin", defs.load(str(directory / "board.json")))
    return dict(appimage.unpack_tree(bootloader.decide(flash, write=False).tree))


@contextmanager
def running(directory: Path) -> Iterator[Any]:
    """A started SimBoard (console_path, han_path); stopped on exit, whatever happens."""
    try:
        from hanota.sim.runner import SimBoard
    except ImportError as exc:
        raise CommandError(
            f"the simulated-board runner (hanota.sim.runner) is not available: {exc}"
        ) from exc
    if not (directory / "flash.bin").exists():
        raise CommandError(
            f"{directory} is not a sim board (no flash.bin); run 'hanota sim create'"
        )
    sb = SimBoard(directory)
    sb.start()
    try:
        sb.wait_for("boot", timeout=BOOT_TIMEOUT_S)
        # MicroPython must be past start-up (its SIGINT handler installed) before mpremote's
        # Ctrl-C arrives; an early one kills it and the runner boots again
        time.sleep(SETTLE_S)
        log(f"sim: {directory.name} running, console {sb.console_path}")
        yield sb
    finally:
        sb.stop()
        log(f"sim: {directory.name} stopped")
