"""Run a benchmark script under the MicroPython unix port and collect its JSON lines.

Scripts print `BENCH {json}` lines; everything else is kept for error messages.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from hanota import mpycross, paths

TESTS = paths.ROOT / "tests"


class MpyError(RuntimeError):
    pass


def run(
    code: str,
    *,
    heap: str = "64k",
    timeout: float = 300,
    extra_path: list[Path] | None = None,
    first: bool = False,
) -> list[dict[str, Any]]:
    """Run `code` (a file body) with firmware/ and extra_path (searched first if `first`)
    importable; the BENCH documents it printed."""
    fw = mpycross.firmware_tree()  # precompiled, as a board runs it: no compiler heap
    dirs = [*(extra_path or []), fw] if first else [fw, *(extra_path or [])]
    pypath = ":".join(str(p) for p in dirs)
    env = dict(os.environ, MICROPYPATH=pypath + ":.frozen")
    with tempfile.TemporaryDirectory(prefix="hanota-bench-") as tmp:
        script = Path(tmp) / "bench_script.py"
        script.write_text(code)
        res = subprocess.run(
            [paths.micropython(), "-X", f"heapsize={heap}", str(script)],
            capture_output=True, text=True, timeout=timeout, env=env, cwd=tmp,
        )  # fmt: skip
    docs = [json.loads(line[6:]) for line in res.stdout.splitlines() if line.startswith("BENCH ")]
    if res.returncode != 0 or not docs:
        tail = (res.stdout + res.stderr)[-2000:]
        raise MpyError(f"micropython exited {res.returncode}:\n{tail}")
    return docs


def compiled(out: Path, modules: list[Path]) -> Path:
    """mpy-cross the firmware's otaclient package and `modules` into out (as frozen code
    is on a board: no compile-time heap in a 64 KB run); returns out for extra_path."""
    pkg = out / "otaclient"
    pkg.mkdir(parents=True, exist_ok=True)
    jobs = [(src, pkg / (src.stem + ".mpy")) for src in (paths.FIRMWARE / "otaclient").glob("*.py")]
    jobs += [(src, out / (src.stem + ".mpy")) for src in modules]
    for src, dst in jobs:
        dst.write_bytes(mpycross.compile_source(src.read_bytes(), src.name))
    return out


def version() -> str:
    res = subprocess.run(
        [paths.micropython(), "-c", "import sys; print(sys.implementation.version, sys.version)"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    return res.stdout.strip()
