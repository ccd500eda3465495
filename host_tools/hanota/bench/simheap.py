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


def _one(tmp: Path, size: int, heap: str) -> dict[str, Any]:
    imgs = Images(tmp / "keys")
    app = simrun.app(tmp, V2, pad_to=size)
    files = imgs.build(V2, board=BOARD, payload=app, name=f"app-{size}")
    opts = UpdateOptions(images=files, trust=[imgs.pub_path], board=BOARD, factory_version=V1,
                         heap=heap, timeout_s=90, workdir=tmp / f"run-{size}-{heap}")  # fmt: skip
    try:
        res = asyncio.run(run_update(opts))
    except Exception as e:  # a board that cannot boot at this heap times out at announce
        return {"ok": False, "error": str(e).splitlines()[0][:160], "fragments": len(files)}
    ok = res.get("activation") == "success" and res.get("running_version") == V2
    return res | {"ok": ok, "fragments": len(files)}


def measure(quick: bool = False) -> Section:
    sizes = (100_000, 1_000_000) if quick else (100_000, 1_000_000, 3_000_000)
    heaps = ("64k", defs.load(BOARD)["heap"])
    s = Section("simheap", "The agent's heap on a sim board (no test fixtures)")
    rows, peaks = [], []
    with tempfile.TemporaryDirectory(prefix="hanota-bench-simheap-") as tmp:
        for size in sizes:
            # 64k: once (booting does not depend on the image; a failed boot waits 60 s)
            for heap in heaps if size == sizes[0] else heaps[1:]:
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
    s.method = (
        f"`hanota rig update` (Python API) on a fresh `{BOARD}` board per run: the real agent "
        "(this checkout's firmware/, modules as .mpy) under the MicroPython unix port at the "
        "given `-X heapsize`, provisioned with `heap_report` so the agent itself prints "
        "`gc.mem_alloc()` after `gc.collect()` at every block and fragment boundary (idle = "
        "once booted and idle, before any request). App = firmware/ padded to the size, signed "
        "into ≤ 750,000-byte fragments, `direct` link. Each size runs at QUALITY.md's 64k and "
        "at the board's own heap (64k with the smallest app only: booting does not depend on the image); 'completes' means activated and reported. On the 64-bit "
        "unix port the loaded agent idles above 64 KB (docs/agent.md, Memory), so the 64k "
        "runs cannot boot yet: that is the open miss."
    )
    s.tables.append((["app bytes", "fragments", "heap", "completes", "idle bytes",
                      "peak above idle", "error"], rows))  # fmt: skip
    return s
