"""The campaign: one image (the agent's own app, fragmented), every fault class times
a few seeds, transfers run a few at a time, and the figures."""

from __future__ import annotations

import asyncio
import shutil
import statistics
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hanota import paths
from hanota.board import defs
from hanota.rig.factory import Images
from hanota.sim import appimage

from . import transfer
from .scenarios import Scenario

TARGET = 0x02000000


def make_plan(work: Path, board: str, pad_to: int, max_size: int, **kw: Any) -> transfer.Plan:
    """The agent's app from this checkout, padded, signed into fragments of max_size."""
    images = Images(work / "keys")
    app = appimage.build(appimage.collect(paths.FIRMWARE), TARGET, defs.load(board), pad_to=pad_to)
    files = images.build(TARGET, board=board, payload=app, max_size=max_size, name="target")
    return transfer.Plan(files, app, TARGET, images.pub_path, board=board, **kw)


async def run_all(plan: transfer.Plan, scenarios: list[Scenario], seeds: list[int], work: Path,
                  jobs: int, progress: Callable[[str], None]) -> list[dict[str, Any]]:  # fmt: skip
    gate = asyncio.Semaphore(jobs)

    async def one(sc: Scenario, seed: int) -> dict[str, Any]:
        async with gate:
            d = work / f"{sc.name}-{seed}"
            shutil.rmtree(d, ignore_errors=True)
            d.mkdir(parents=True)
            try:
                res = await transfer.run(plan, sc, seed, d)
            except Exception as exc:  # a broken run is a tried, not completed, transfer
                res = {"class": sc.name, "seed": seed, "completed": False, "bytes_wrong": 0,
                       "error": f"{exc!r}", "trace": traceback.format_exc(limit=4)}  # fmt: skip
            progress(line(res))
            return res

    return await asyncio.gather(*(one(sc, s) for sc in scenarios for s in seeds))


def line(r: dict[str, Any]) -> str:
    if "error" in r:
        return f"faults: {r['class']} seed {r['seed']}: ERROR {r['error']}"
    how = (
        "completed"
        if r["completed"]
        else f"NOT completed ({r['state']}, running {r['running']:#010x})"
    )
    extra = [f"{k} {v}" for k, v in sorted(r["faults"].items()) if v]
    for k in ("abandoned", "hub_restarts", "wait_for_data"):
        if r.get(k):
            extra.append(f"{k} {r[k]}")
    if r["healed"]:
        extra.append("healed")
    return (f"faults: {r['class']} seed {r['seed']}: {how} in {r['seconds']} s, "
            f"{r['bytes_wrong']} of {r['bytes_checked']} bytes wrong; " + ", ".join(extra))  # fmt: skip


def table(results: list[dict[str, Any]], scenarios: list[Scenario]) -> list[dict[str, Any]]:
    rows = []
    for sc in scenarios:
        rs = [r for r in results if r["class"] == sc.name]
        ok = [r for r in rs if "error" not in r]
        faults: dict[str, int] = {}
        for r in ok:
            for k, v in r["faults"].items():
                faults[k] = faults.get(k, 0) + v
        rows.append({
            "class": sc.name, "what": sc.what, "tried": len(rs),
            "completed": sum(bool(r["completed"]) for r in rs),
            "healed": sum(bool(r.get("healed")) for r in ok),
            "abandoned": sum(r["abandoned"] for r in ok),
            "hub_restarts": sum(r["hub_restarts"] for r in ok),
            "wait_for_data": sum(r["wait_for_data"] for r in ok),
            "bytes_wrong": sum(r["bytes_wrong"] for r in rs),
            "bytes_checked": sum(r.get("bytes_checked", 0) for r in ok),
            "errors": len(rs) - len(ok), "faults": faults,
            "median_s": statistics.median(r["seconds"] for r in ok) if ok else None,
        })  # fmt: skip
    return rows


def summary(results: list[dict[str, Any]]) -> dict[str, int]:
    return {
        "tried": len(results),
        "completed": sum(bool(r["completed"]) for r in results),
        "bytes_wrong": sum(r["bytes_wrong"] for r in results),
    }


def summary_line(s: dict[str, int]) -> str:
    return (f"faults: {s['tried']} transfers tried, {s['completed']} completed, "
            f"{s['bytes_wrong']} bytes wrong")  # fmt: skip


def workdir(given: Path | None) -> tuple[Path, bool]:
    """(directory, remove it afterwards)."""
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        return given, False
    return Path(tempfile.mkdtemp(prefix="hanota-faults-")), True
