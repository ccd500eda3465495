"""Run code under the real MicroPython unix port, with the firmware importable.

The firmware runs precompiled (.mpy, hanota.mpycross), as a board ships it: compiling
source in a 64 KB heap would measure the compiler, and its garbage would make heap
figures depend on the order things happen to be freed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

from hanota import mpycross
from hanota.paths import BUILD, FIRMWARE, micropython


def firmware_mpy() -> Path:
    """firmware/ compiled to .mpy in a directory named by the sources' digest."""
    srcs = sorted(p for p in FIRMWARE.rglob("*.py") if "__pycache__" not in p.parts)
    files = [(p.relative_to(FIRMWARE).as_posix(), p.read_bytes()) for p in srcs]
    key = hashlib.sha256(b"".join(r.encode() + b"\0" + d for r, d in files)).hexdigest()[:16]
    out = BUILD / "mpy-firmware" / key
    if not (out / ".done").is_file():
        for rel, data in mpycross.compile_tree([f for f in files if f[0] != "main.py"]):
            dst = out / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            tmp = dst.with_name(f"{dst.name}.{os.getpid()}.tmp")  # xdist workers race here
            tmp.write_bytes(data)
            tmp.replace(dst)
        (out / ".done").write_text("")
    return out


def run_mpy(
    code: str, *, heap: str = "64k", timeout: float = 120, cwd: str | None = None
) -> subprocess.CompletedProcess:
    """Run `code` with `micropython -X heapsize=HEAP`; the firmware is importable."""
    env = dict(os.environ, MICROPYPATH=f"{firmware_mpy()}:.frozen")
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
