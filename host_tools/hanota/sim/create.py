"""Lay out a sim board directory: flash.bin (partition table, factory app in ota_0, erased
otadata, formatted LittleFS "agent" partition), board.json and the ops counter file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from .. import paths
from ..board import defs
from . import appimage
from .flash import FlashError, FlashFile

FACTORY_VERSION = 0x01000000
OPS_FILE = "ops"
FS_DIR = "fs"  # the board's filesystem outside /data (MicroPython's cwd): persists
_MKFS = """
import vfs
from ports.simflash import Flash, Partition
vfs.VfsLfs2.mkfs(Partition(Flash({path!r}), {offset}, {size}))
print("formatted")
"""


def factory_app(board: dict[str, Any], version: int, source: Path | None) -> bytes:
    """`hanota app build` of firmware/ (or `source`) for the board."""
    src = Path(source) if source else paths.FIRMWARE
    if source is None and not (src / "main.py").is_file():
        raise appimage.AppError(
            f"{src}/main.py does not exist yet (the agent is not built in this checkout); "
            "pass --source DIR with an app tree that has main.py at its top"
        )
    app = appimage.build(appimage.collect(src), version, board)
    appimage.check_fits(app, board)
    return app


def write_ops(directory: Path) -> None:
    """The control file shared with the port (ports/simflash.py), 12 bytes a field: ops |
    cut-at | exit reason | watchdog timeout ms (0: not armed) | watchdog feed count."""
    (directory / OPS_FILE).write_bytes(b"%11d\n%11d\n%-11s\n%11d\n%11d\n" % (0, 0, b"", 0, 0))


def format_agent(flash: FlashFile) -> None:
    """mkfs LittleFS on the agent partition with the real MicroPython (CPython has none)."""
    offset, size = flash.part("agent")
    code = _MKFS.format(path=str(flash.path), offset=offset, size=size)
    env = dict(os.environ, MICROPYPATH=str(paths.FIRMWARE))
    res = subprocess.run([paths.micropython(), "-X", "heapsize=64k", "-c", code],
                         capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    if res.returncode != 0 or "formatted" not in res.stdout:
        raise FlashError(f"formatting the agent partition failed:\n{res.stdout}{res.stderr}")


def create(directory: str | Path, board_name: str, version: int = FACTORY_VERSION,
           source: Path | None = None, app: bytes | None = None) -> dict[str, Any]:  # fmt: skip
    """Create DIR with a fresh flash; returns the board definition used."""
    board = defs.load(board_name)
    if board["kind"] != "sim":
        raise defs.BoardError(f"board {board['name']!r} is kind {board['kind']!r}, not a sim board")
    app = app if app is not None else factory_app(board, version, source)
    appimage.check_fits(app, board)
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    flash = FlashFile.create(out / "flash.bin", board)
    flash.write(flash.part("ota_0")[0], app)
    format_agent(flash)
    shutil.rmtree(out / FS_DIR, ignore_errors=True)  # a new board: its filesystem is empty
    (out / FS_DIR).mkdir()
    (out / "board.json").write_text(json.dumps(board, indent=2) + "\n")
    write_ops(out)
    return board
