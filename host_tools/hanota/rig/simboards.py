"""Fresh simulated boards for the rig: `hanota sim create` + provisioning written straight
into the board's LittleFS store (what `hanota board provision --sim` pushes over mpremote,
without starting the board).

Sim boards only; a real board is flashed and provisioned with `hanota board flash`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from hanota import paths
from hanota.board import provision

from . import factory

_WRITE = """
import vfs
from ports.simflash import Flash, Partition
vfs.mount(vfs.VfsLfs2(Partition(Flash({path!r}), {offset}, {size})), "/data")
for name, data in {files!r}:
    f = open("/data/" + name, "wb")
    f.write(bytes.fromhex(data))
    f.close()
vfs.umount("/data")
print("written")
"""


def write_store(directory: Path, board: dict[str, Any], files: dict[str, bytes]) -> None:
    """Put store files into the sim board's agent partition (LittleFS, real MicroPython)."""
    from hanota.sim.flash import FlashFile

    flash = FlashFile(directory / "flash.bin", board)
    offset, size = flash.part("agent")
    items = [(name, data.hex()) for name, data in files.items()]
    code = _WRITE.format(path=str(flash.path), offset=offset, size=size, files=items)
    env = dict(os.environ, MICROPYPATH=str(paths.FIRMWARE))
    res = subprocess.run([paths.micropython(), "-X", "heapsize=256k", "-c", code],
                         capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    if res.returncode != 0 or "written" not in res.stdout:
        raise RuntimeError(f"writing the sim board's store failed:\n{res.stdout}{res.stderr}")


def copy(source: Path, directory: Path) -> dict[str, Any]:
    """A copy of the sim board in `source` (flash file, filesystem, record; not its run
    directory or log) in `directory`; its device record."""
    shutil.copytree(source, directory, ignore=shutil.ignore_patterns("run", "console.log"))
    return json.loads((directory / "device.json").read_text())


def fresh(directory: Path, board: str, *, factory_version: int, trust: list[Path],
          suppliers: list[str], seed: str, short_addr: int = 1, app: bytes | None = None,
          agent_config: dict[str, Any] | None = None,
          ) -> tuple[provision.Identity, dict[str, Any]]:  # fmt: skip
    """A new sim board in `directory` running the factory app, provisioned (with
    agent_config.json when given); its record."""
    from hanota.sim import create

    bdef = create.create(directory, board, factory_version, app=app)
    ident, record = factory.device(board, suppliers, seed=seed, short_addr=short_addr,
                                   anchors=trust)  # fmt: skip
    ident.agent_config = agent_config
    write_store(directory, bdef, provision.store_files(ident))
    provision.write_record(directory / "device.json", record)
    return ident, record
