"""The agent's own heap on a sim board: idle and peak above idle per image size, per heap.

No test fixtures in the heap here (unlike the `heap` family's fake board): a real sim
board, the agent's heap report (`heap_report`), one `hanota rig update` per size and heap.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from ..board import defs
from ..output import log
from ..rig.factory import Images
from ..rig.update import UpdateOptions, run_update
from . import simrun
from .results import Bar, Figure, Section

BOARD, V1, V2 = simrun.BOARD, simrun.V1, simrun.V2


FLOOR_SIZE = 2_100_000  # QUALITY.md: a whole fragmented update of >= 2 MB
FLOOR_STEP_K = 4


def _one(tmp: Path, size: int, heap: str, compress: bool = False,
         timeout_s: float = 90) -> dict[str, Any]:  # fmt: skip
    imgs = Images(tmp / "keys")
    app = simrun.app(tmp, V2, pad_to=size)
    tag = f"{size}-{'z' if compress else 'p'}"
    files = imgs.build(V2, board=BOARD, payload=app, name=f"app-{tag}", compress=compress)
    work = tmp / f"run-{tag}-{heap}"
    opts = UpdateOptions(images=files, trust=[imgs.pub_path], board=BOARD, factory_version=V1,
                         heap=heap, timeout_s=timeout_s, workdir=work)  # fmt: skip
    try:
        res = asyncio.run(run_update(opts))
    except Exception as e:  # a board that cannot boot at this heap times out at announce
        res = {"ok": False, "error": str(e).splitlines()[0][:160]}
    else:
        ok = res.get("activation") == "success" and res.get("running_version") == V2
        res = res | {"ok": ok}
    log_file = work / "board" / "console.log"
    crashes = (
        log_file.read_text(errors="replace").count("agent: crashed") if log_file.exists() else 0
    )
    return res | {"fragments": len(files), "crashes": crashes}


def _floor(tmp: Path, start_k: int) -> tuple[int | None, list[list[str]]]:
    """The smallest heap (KB, FLOOR_STEP_K apart, from the board's down to 64) at which a
    compressed FLOOR_SIZE update completes with no agent crash; at the first miss, the
    heap halfway back up is tried too, then the scan stops."""
    floor, rows = None, []

    def clean(k: int) -> bool:
        log(f"bench: simheap: floor: {FLOOR_SIZE:,}-byte compressed update at {k}k")
        r = _one(tmp, FLOOR_SIZE, f"{k}k", compress=True, timeout_s=60)
        rows.append([f"{k}k", str(r["fragments"]), "yes" if r["ok"] else "no", str(r["crashes"]),
                     r.get("error") or ""])  # fmt: skip
        return r["ok"] and not r["crashes"]

    for k in range(start_k, 63, -FLOOR_STEP_K):
        if not clean(k):
            half = k + FLOOR_STEP_K // 2
            if floor is not None and clean(half):  # floor is k + FLOOR_STEP_K here
                floor = half
            break
        floor = k
    return floor, rows


def measure(quick: bool = False) -> Section:
    sizes = (100_000, 1_000_000) if quick else (100_000, 1_000_000, 3_000_000)
    heaps = ("64k", defs.load(BOARD)["heap"])
    s = Section("simheap", "The agent's heap on a sim board (no test fixtures)")
    rows, peaks = [], []
    with tempfile.TemporaryDirectory(prefix="hanota-bench-simheap-") as tmp:
        for size in sizes:
            # every size at QUALITY.md's 64k; the board's own heap with the smallest app,
            # for comparison (the peak above idle is taken from the 64k runs)
            for heap in heaps if size == sizes[0] else heaps[:1]:
                log(f"bench: simheap: {size:,}-byte app at {heap}")
                r = _one(Path(tmp), size, heap)
                s.data[f"{size}@{heap}"] = {k: r.get(k) for k in
                                            ("ok", "error", "idle_heap", "peak_heap", "fragments",
                                             "transfer_seconds")}  # fmt: skip
                rows.append([f"{size:,}", str(r["fragments"]), heap, "yes" if r["ok"] else "no",
                             f"{r['idle_heap']:,}" if r.get("idle_heap") else "-",
                             f"{r['peak_heap']:,}" if r.get("peak_heap") is not None else "-",
                             r.get("error") or ""])  # fmt: skip
                if r["ok"] and r.get("peak_heap") is not None:
                    if heap == "64k":
                        peaks.append(r["peak_heap"])
                    s.add(Figure(f"peak_{size}_{heap}",
                                 f"sim board, {size:,}-byte app at {heap}: peak above idle",
                                 r["peak_heap"], "bytes", Bar("<=", 16384, "bytes")))  # fmt: skip
                if heap == "64k":
                    s.add(Figure(f"runs_at_64k_{size}",
                                 f"sim board, {size:,}-byte update completes at 64 KB heap",
                                 1.0 if r["ok"] else 0.0, "yes=1", Bar(">=", 1, "")))  # fmt: skip
        if len(peaks) >= 2:
            s.add(Figure("growth", "sim board: peak growth, smallest → largest app",
                         max(peaks) - min(peaks), "bytes", Bar("<=", 1024, "bytes", "flat")))  # fmt: skip
        if not quick:
            start = int(defs.load(BOARD)["heap"].rstrip("k"))
            floor, floor_rows = _floor(Path(tmp), start)
            s.data["floor_k"] = floor
            if floor is not None:
                s.add(Figure("floor", f"sim board: smallest heap for a {FLOOR_SIZE / 1e6:.1f} MB "
                             "compressed update, no agent crash", floor, "KB",
                             Bar("<=", 64, "KB")))  # fmt: skip
    s.method = (
        f"`hanota rig update` (Python API) on a fresh `{BOARD}` board per run: the real agent "
        "(this checkout's firmware/, modules as .mpy) under the MicroPython unix port at the "
        "given `-X heapsize`, provisioned with `heap_report` so the agent itself prints "
        "`gc.mem_alloc()` after `gc.collect()` at every block and fragment boundary (idle = "
        "once booted and idle, before any request). App = firmware/ padded to the size, signed "
        "into ≤ 750,000-byte fragments, `direct` link. Each size runs at QUALITY.md's 64k "
        "(the growth figure compares those), the smallest also at the board's own heap; "
        "'completes' means activated and reported. On the 64-bit unix port the loaded "
        "agent idles at ~55 KB of the 64k heap's 64.6 KB (docs/agent.md, Memory). "
        "A size's peak repeats run to run for one build but moves by up to ~1 KB between "
        "builds: where objects land decides which dead ones a stale word on the C stack "
        "keeps alive at a boundary (MicroPython's collector scans the stack conservatively). "
        "So the growth figure can differ by that much between two builds with the same "
        "sizes. "
        "Floor (second table): a "
        f"{FLOOR_SIZE:,}-byte app, compressed, at the board's heap and then "
        f"{FLOOR_STEP_K}k less each run until an update fails or the agent crashes (it "
        "restarts and resumes, but a crash is a miss here), then the heap halfway back up; "
        "the figure is the smallest clean heap."
    )
    s.tables.append((["app bytes", "fragments", "heap", "completes", "idle bytes",
                      "peak above idle", "error"], rows))  # fmt: skip
    if not quick:
        s.tables.append((["heap", "fragments", "completes", "agent crashes", "error"], floor_rows))
    return s
