"""Bytes wrong, read back from the sim board's flash file (after the board stopped):
the app slot it runs against the image's firmware, the update slot's staged fragments
(progress.json in the agent's LittleFS store) against the same firmware.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from hanota import paths
from hanota.sim.flash import FlashFile

_READ = """
import vfs
from ports.simflash import Flash, Partition
vfs.mount(vfs.VfsLfs2(Partition(Flash({path!r}), {offset}, {size})), "/data", readonly=True)
for name in {names!r}:
    try:
        f = open("/data/" + name, "rb")
        print("FILE", name, f.read().hex())
        f.close()
    except OSError:
        print("NOFILE", name)
vfs.umount("/data")
"""


def slot(directory: Path, board: dict[str, Any], index: int, n: int) -> bytes:
    """The first n bytes of app slot ota_<index>."""
    return FlashFile(directory / "flash.bin", board).read_partition(f"ota_{index}", n)


def diff(got: bytes, want: bytes) -> int:
    """Bytes that differ, counting missing bytes as wrong."""
    n = min(len(got), len(want))
    return sum(a != b for a, b in zip(got[:n], want[:n], strict=True)) + abs(len(got) - len(want))


def read_store(directory: Path, board: dict[str, Any], names: list[str]) -> dict[str, bytes | None]:
    """Files of the agent's store (LittleFS "agent" partition), read by real MicroPython."""
    flash = FlashFile(directory / "flash.bin", board)
    offset, size = flash.part("agent")
    code = _READ.format(path=str(flash.path), offset=offset, size=size, names=names)
    env = dict(os.environ, MICROPYPATH=str(paths.FIRMWARE))
    res = subprocess.run([paths.micropython(), "-X", "heapsize=256k", "-c", code],
                         capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    out: dict[str, bytes | None] = {}
    for line in res.stdout.splitlines():
        parts = line.split(" ")
        if parts[0] == "FILE" and len(parts) == 3:
            out[parts[1]] = bytes.fromhex(parts[2])
        elif parts[0] == "NOFILE" and len(parts) == 2:
            out[parts[1]] = None
    if res.returncode != 0 or set(out) != set(names):
        raise RuntimeError(f"reading the sim board's store failed:\n{res.stdout}{res.stderr}")
    return out


def staged(directory: Path, board: dict[str, Any], update_slot: int,
           firmware: bytes) -> tuple[int, int, int]:  # fmt: skip
    """(fragments staged, bytes checked, bytes wrong) of progress.json's done fragments."""
    raw = read_store(directory, board, ["progress.json"])["progress.json"]
    if raw is None:
        return 0, 0, 0
    prog = json.loads(raw)
    data = slot(directory, board, update_slot, len(firmware))
    checked = wrong = 0
    for _index, off, length in prog.get("done", []):
        checked += length
        wrong += diff(data[off : off + length], firmware[off : off + length])
    return len(prog.get("done", [])), checked, wrong
