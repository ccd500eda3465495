"""Run code under the real MicroPython unix port, with the firmware importable.

The firmware runs precompiled (.mpy, hanota.mpycross), as a board ships it: compiling
source in a 64 KB heap would measure the compiler, and its garbage would make heap
figures depend on the order things happen to be freed.
"""

from __future__ import annotations

import os
import subprocess

from hanota import mpycross
from hanota.paths import micropython


def run_mpy(
    code: str, *, heap: str = "64k", timeout: float = 120, cwd: str | None = None
) -> subprocess.CompletedProcess:
    """Run `code` with `micropython -X heapsize=HEAP`; the firmware is importable."""
    env = dict(os.environ, MICROPYPATH=f"{mpycross.firmware_tree()}:.frozen")
    return subprocess.run(
        [micropython(), "-X", f"heapsize={heap}", "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=cwd,
    )


def check_mpy(code: str, **kw) -> str:
    """Run `code`; fail with MicroPython's output unless it exits 0. Returns stdout."""
    res = run_mpy(code, **kw)
    assert res.returncode == 0, f"micropython exited {res.returncode}\n{res.stdout}\n{res.stderr}"
    return res.stdout
