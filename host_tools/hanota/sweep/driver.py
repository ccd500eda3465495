"""The sweep from start to end: images, one clean reference run per update (its op count
and op map), the cut cases, the pool, the report."""

from __future__ import annotations

import asyncio
import contextlib
import io
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hanota.board import defs
from hanota.output import log
from hanota.rig.factory import Images
from hanota.rig.update import UpdateOptions, run_update

from . import plan, pool, report
from .updates import BOARD, UPDATES, Built, Update, build


@dataclass
class Options:
    updates: dict[str, list[tuple[int, int]] | None]  # name -> op ranges (None: all)
    workdir: Path
    quick: bool = False
    jobs: int = 3
    seed: int = 1
    runs: int = 12  # multi-cut runs ("multi"), power-cycle runs ("half")
    size: int = 300_000  # new app bytes
    max_size: int = 80_000  # OTA file (fragment) limit
    timeout: float = 20.0  # per run: hub settling; a dropped activation waits this long
    watchdog_ms: int = 3000  # trial-boot watchdog for the crashing app (board: 20 s)
    heap: str | None = None  # MicroPython heap of every board (None: the board's own)
    keep: bool = False
    argv: list[str] = field(default_factory=list)
    starts: dict[str, str] = field(default_factory=dict)  # start state -> board dir to copy


def sweep(opts: Options) -> dict[str, Any]:
    t0 = time.monotonic()
    shutil.rmtree(opts.workdir, ignore_errors=True)
    opts.workdir.mkdir(parents=True)
    images = Images(opts.workdir / "images")
    chosen = [UPDATES[n] for n in opts.updates]
    built = {u.name: build(u, opts.workdir, opts.size, opts.max_size, images) for u in chosen}
    log(f"sweep: board {BOARD} (heap {opts.heap or defs.load(BOARD).get('heap')}), {len(chosen)} updates, "
        f"{opts.jobs} boards at a time")  # fmt: skip
    if any(u.start == "updated-once" for u in chosen):
        opts.starts["updated-once"] = _updated_once(opts, images, built.get("plain"))
    refs = _references(chosen, built, opts)
    cases: list[dict[str, Any]] = []
    for u in chosen:
        ref = refs[u.ref_key]
        if not ref["survived"]:
            continue
        m = plan.OpMap.from_marks(ref["facts"]["ops"], ref["marks"])
        for c in plan.cases(u, m, ranges=opts.updates[u.name], quick=opts.quick,
                            seed=opts.seed, runs=opts.runs):  # fmt: skip
            cases.append(_case(c, u, built[u.name], opts))
    log(f"sweep: {len(cases)} cut runs")
    counter = iter(range(1, len(cases) + 1))
    results = pool.run_all(cases, opts.jobs, lambda r: log(report.progress(r, next(counter),
                                                                           len(cases))))  # fmt: skip
    return report.build(chosen, built, refs, results, opts, time.monotonic() - t0)


def _references(chosen: list[Update], built: dict[str, Built], opts: Options) -> dict[str, Any]:
    """One clean run per distinct image and start state, with its op milestones."""
    first: dict[str, Update] = {}
    for u in chosen:
        first.setdefault(u.ref_key, u)
    cases = []
    for key, u in first.items():
        c = _case({"id": f"{u.name}/reference", "update": u.name, "cuts": [], "cycles": [],
                   "phase": "clean", "outcomes": [u.expect], "min_cycles": 0},
                  u, built[u.name], opts)  # fmt: skip
        c["probe"] = True
        cases.append((key, c))
    log(f"sweep: {len(cases)} clean reference runs")
    results = pool.run_all([c for _, c in cases], opts.jobs)
    refs = {}
    for (key, _c), res in zip(cases, results, strict=True):
        refs[key] = res
        state = "ok" if res["survived"] else f"FAILED {res['failed']}"
        log(f"sweep: reference {res['id']}: {res['facts'].get('ops')} flash operations, "
            f"{res['outcome']}, {state}")  # fmt: skip
    return refs


def _updated_once(opts: Options, images: Images, plain: Built | None) -> str:
    """A board that took the plain update cleanly (V2 from ota_1), for `second` to copy."""
    plain = plain or build(UPDATES["plain"], opts.workdir, opts.size, opts.max_size, images)
    work = opts.workdir / "start-updated-once"
    run = UpdateOptions(images=[Path(f) for f in plain.files], trust=[Path(t) for t in plain.trust],
                        timeout_s=max(60.0, opts.timeout), workdir=work, seed="sweep:start",
                        heap_report=False, heap=opts.heap)  # fmt: skip
    with contextlib.redirect_stderr(io.StringIO()):  # the rig's notes (no heap report here)
        res = asyncio.run(run_update(run))
    if res.get("activation") != "success" or res.get("running_version") != plain.new_version:
        raise RuntimeError(f"sweep: the first update for 'second' did not land: {res}")
    log(f"sweep: start state updated-once: v{plain.new_version:#x} runs, in {work / 'board'}")
    return str(work / "board")


def _case(c: dict[str, Any], u: Update, b: Built, opts: Options) -> dict[str, Any]:
    return {
        **c,
        "start_from": opts.starts.get(u.start),
        "factory_app": b.factory_app,
        "workdir": str(opts.workdir / "runs" / c["id"].replace("/", "-")),
        "files": b.files,
        "trust": b.trust,
        "timeout": opts.timeout,
        "heap": opts.heap,
        "watchdog_ms": opts.watchdog_ms if u.crash else None,
        "keep": opts.keep,
        "expect": {
            "old_version": u.versions[0],
            "new_version": b.new_version,
            "new_sha": b.new_sha,
            "sizes": b.sizes,
            "outcomes": c["outcomes"],
            "cuts": c["cuts"],
            "min_cycles": c["min_cycles"],
            "untouched": not u.trusted,
        },
    }


__all__ = ["Options", "sweep"]
