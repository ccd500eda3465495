"""`mpremote cp` to a sim board's console over the emulated link: the board's console pty
relayed through a LinkEmulator to a fresh pty, and mpremote pointed at that pty."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

from hanota import paths
from hanota.link.emulator import LinkEmulator
from hanota.link.profiles import LinkProfile
from hanota.link.pty import close_pty, open_pty
from hanota.link.transport import open_fd, open_serial


async def mpremote_cp(console_path: str, profile: LinkProfile, src: Path,
                      dest: str = ":/data/bench.bin", timeout: float = 600) -> dict[str, Any]:  # fmt: skip
    """Time `mpremote connect <relayed pty> fs cp SRC DEST`; bytes the link carried."""
    master, slave = open_pty()
    rc, wc = await open_serial(console_path)
    rm, wm = await open_fd(master)
    emu = LinkEmulator(profile)
    relay = asyncio.create_task(emu.run(rc, wc, rm, wm))
    try:
        t0 = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            paths.mpremote(), "connect", slave, "resume", "fs", "cp", str(src), dest,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        seconds = time.monotonic() - t0
    finally:
        emu.close()
        with contextlib.suppress(Exception):
            await relay
        for w in (wc, wm):
            with contextlib.suppress(Exception):
                w.close()
        await asyncio.sleep(0.3)  # let the transports close the (exclusively locked) port
        close_pty(master)
    return {
        "seconds": seconds,
        "rc": proc.returncode,
        "output": out.decode(errors="replace")[-500:],
        "bytes": src.stat().st_size,
        "link": emu.stats(),
    }
