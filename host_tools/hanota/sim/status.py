"""`hanota sim info`: what a sim board directory holds, without running it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..board import defs
from . import appimage, bootloader
from .flash import FlashFile

_OPS_FIELDS = (("ops", 0), ("cut_at", 12))


def load_dir(directory: str | Path) -> FlashFile:
    """The checked flash file of a sim board directory (clear errors otherwise)."""
    path = Path(directory)
    if not (path / "board.json").is_file():
        raise defs.BoardError(f"{path}: not a sim board directory (no board.json); "
                              "create one with 'hanota sim create DIR --board NAME'")  # fmt: skip
    flash = FlashFile(path / "flash.bin", defs.load(str(path / "board.json")))
    flash.check()
    return flash


def slot_info(flash: FlashFile, slot: int) -> dict[str, Any]:
    try:
        head, _tree = bootloader.read_app(flash, slot)
    except appimage.AppError as exc:
        return {"valid": False, "error": str(exc)}
    return {"valid": True, "version": head.version, "size": head.total}


def describe(directory: str | Path) -> dict[str, Any]:
    flash = load_dir(directory)
    entries = flash.otadata()
    doc: dict[str, Any] = {
        "dir": str(Path(directory).resolve()),
        "board": flash.board["name"],
        "otadata": [e.to_json(i) for i, e in enumerate(entries)],
        "slots": {f"ota_{i}": slot_info(flash, i) for i in (0, 1)},
    }
    try:
        d = bootloader.decide(flash, write=False)
        doc.update(active_slot=f"ota_{d.slot}", running_version=d.version,
                   pending_verify=d.pending_verify, boot_events=d.events)  # fmt: skip
    except bootloader.NoBootableApp as exc:
        doc.update(active_slot=None, running_version=None, error=str(exc))
    doc.update(read_ops(Path(directory)))
    last = Path(directory) / "run" / "boot.json"
    if last.is_file():
        boot = json.loads(last.read_text())
        doc["last_boot"] = {k: boot[k] for k in ("slot", "version", "pending_verify", "boot")}
    return doc


def read_ops(directory: Path) -> dict[str, int]:
    try:
        raw = (directory / "ops").read_bytes()
    except OSError:
        return {"ops": 0, "cut_at": 0}
    return {name: int(raw[off : off + 12] or b"0") for name, off in _OPS_FIELDS}
