"""Fleet: one hub updating many sim boards at once (the real agent in each), aggregate
throughput; plus one sim board's cold start, RSS, and `hanota board deploy` time."""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path
from typing import Any

from hanota.link import profiles

from . import simrun
from .linkeff import HEAP, LINE, _work
from .results import Bar, Figure, Section


def rss_kb(pid: int) -> dict[str, int]:
    """RSS, private and shared kB of a process (smaps_rollup)."""
    out = {"rss": 0, "private": 0, "shared": 0}
    try:
        for line in open(f"/proc/{pid}/smaps_rollup", encoding="ascii"):
            k, _, v = line.partition(":")
            kb = int(v.split()[0]) if v.split() and v.split()[0].isdigit() else 0
            if k == "Rss":
                out["rss"] = kb
            elif k.startswith("Private_"):
                out["private"] += kb
            elif k.startswith("Shared_"):
                out["shared"] += kb
    except OSError:
        pass
    return out


async def _fleet(n: int, size: int) -> dict[str, Any]:
    bench = simrun.Bench(_work())
    prof = profiles.get("uart-115200")
    files = bench.files(simrun.small_app(simrun.V2, size), compress=False, name="fleet")
    boards = [bench.board(HEAP, short_addr=i + 1) for i in range(n)]
    euis = [rec["eui64"] for _s, rec in boards]
    async with simrun.rig_for(bench.work / "hub", prof) as rig:
        for sim, rec in boards:
            sim.start()
            await rig.add_sim(sim, rec)
        await rig.wait(lambda: all(rig.reported(e) for e in euis), 120, "every board's announce")
        rss = [rss_kb(sim._proc.pid) for sim, _r in boards if sim._proc]  # noqa: SLF001
        res = await timed_submission(rig, euis, files, 900)
    return res | {"rss": rss, "note": bench.note}


async def timed_submission(rig: Any, euis: list[str], files: list[Path],
                           timeout_s: float) -> dict[str, Any]:  # fmt: skip
    """One submission of `files` for every board in `euis`, to the end of each transfer;
    the span from the first block the hub served to the last board's Upgrade End Request
    (the hub's own Transfer.first_block and .ended stamps), the aggregate over it and
    each board's own seconds. A board counts as completed unless it failed or was
    discarded."""
    sub = rig.hub.submit("supplier-a", euis, files)
    keys = [(sub["id"], e) for e in euis]
    ends: dict[tuple[str, str], float] = {}

    def all_done() -> bool:
        for k in keys:
            if k not in ends and simrun._done(rig, k, len(files)):  # noqa: SLF001
                # the hub's stamp of the last Upgrade End Request; a failed one: now
                ends[k] = rig.hub.state.transfers[k].ended or time.time()
        return len(ends) == len(keys)

    await rig.wait(all_done, timeout_s, "every board's transfer", poll=0.02)
    ts = [rig.hub.state.transfers[k] for k in keys]
    first = min(t.first_block for t in ts if t.first_block)
    per = [ends[k] - (rig.hub.state.transfers[k].first_block or ends[k]) for k in keys]
    states = [t.state for t in ts]
    fb = sum(f.stat().st_size for f in files)
    span = max(ends.values()) - first
    return {"boards": len(euis), "file_bytes": fb, "span_s": span,
            "aggregate": len(euis) * fb / span, "per_board_s": per, "states": states,
            "ok": sum(s not in ("failed", "discarded") for s in states)}  # fmt: skip


async def _one(quick: bool) -> dict[str, Any]:
    """Cold start of one board to its DEVICE_ANNOUNCE at the hub, its RSS; deploy time."""
    bench = simrun.Bench(_work())
    colds = []
    for _ in range(2 if quick else 5):
        sim, rec = bench.board(HEAP)
        async with simrun.rig_for(
            bench.work / f"hub-cold{bench.count}", profiles.get("direct")
        ) as rig:
            t0 = time.monotonic()
            sim.start()
            await rig.add_sim(sim, rec)
            eui = rec["eui64"]
            await rig.wait(lambda e=eui: rig.reported(e), 60, "announce", poll=0.002)
            colds.append(time.monotonic() - t0)
    return {"cold_s": colds, "deploy": await asyncio.to_thread(_deploy, bench)}


def _deploy(bench: simrun.Bench) -> dict[str, Any]:
    from hanota.board import actions, defs

    sim, _rec = bench.board(HEAP)
    t0 = time.monotonic()
    try:
        out = actions.deploy_to(defs.load(simrun.BOARD), None, False, str(sim.dir))
    except Exception as exc:  # noqa: BLE001 - reported as pending, not fatal
        return {"error": f"{type(exc).__name__}: {exc}"}
    return out | {"wall_s": time.monotonic() - t0}


def measure(quick: bool = False) -> Section:
    n, size = (4, 10_000) if quick else (32, 40_000)
    s = Section("fleet", "Fleet: boards served at once, sim board cost")
    f = asyncio.run(_fleet(n, size))
    big = None if quick else asyncio.run(_fleet(2 * n, size))  # headroom: twice the goal
    one = asyncio.run(_one(quick))
    per = f["per_board_s"]
    rss = [r["rss"] for r in f["rss"]]
    s.add(
        Figure("boards", "boards updated at once by one hub (all completed)", f["ok"], "boards",
               Bar(">=", 32, "boards")),
        Figure("aggregate", "aggregate image throughput", f["aggregate"] / 1000, "kB/s"),
        Figure("per_board_eff", "median per-board image bytes/s ÷ 11520 under load",
               f["file_bytes"] / statistics.median(per) / LINE, ""),
        Figure("slowest_eff", "slowest board's image bytes/s ÷ 11520",
               f["file_bytes"] / max(per) / LINE, ""),
        Figure("cold_start", "sim board cold start: start() to DEVICE_ANNOUNCE at the hub (median)",
               statistics.median(one["cold_s"]) * 1000, "ms"),
        Figure("rss_mb", "RSS of one sim board's MicroPython process (median)",
               statistics.median(rss) / 1024 if rss else None, "MB"),
        Figure("private_mb", "of which private (median)",
               statistics.median(r["private"] for r in f["rss"]) / 1024 if rss else None, "MB"),
    )  # fmt: skip
    if big is not None:
        s.add(
            Figure("boards_2x", f"headroom: boards completed of {big['boards']} at once", big["ok"], "boards"),
            Figure("aggregate_2x", f"aggregate image throughput with {big['boards']} boards",
                   big["aggregate"] / 1000, "kB/s"),
            Figure("slowest_eff_2x", f"slowest board's bytes/s ÷ 11520 with {big['boards']} boards",
                   big["file_bytes"] / max(big["per_board_s"]) / LINE, ""),
        )  # fmt: skip
    dep = one["deploy"]
    if "error" in dep:
        s.pending.append(f"`hanota board deploy` to a sim board failed here: {dep['error']}")
    else:
        s.add(Figure("deploy_s", "`hanota board deploy` (mpremote) to a fresh sim board",
                     dep.get("deploy_s"), "s",
                     note="its files already match the app slot, so mpremote compares hashes "
                     "and copies nothing: a lower bound"))  # fmt: skip
    s.method = (
        f"{n} fresh provisioned sim boards (`sim-ppmid`, the real agent under MicroPython at "
        f"`-X heapsize={HEAP}`, each its own process and ptys), each linked to one in-process hub "
        "through its own `LinkEmulator` at `uart-115200` (11,520 bytes/s, 2 ms). One submission "
        f"of a {f['file_bytes']:,}-byte OTA file for all of them; aggregate = boards × bytes ÷ "
        "(first block served .. last board's Upgrade End Request). Per-board time as in the "
        "link family. Cold start: `SimBoard.start()` to the board's DEVICE_ANNOUNCE reaching "
        "the hub over the `direct` profile (bootloader, unpack, MicroPython start, agent boot). "
        "RSS from /proc/PID/smaps_rollup of each board's MicroPython process after boot. "
        "Deploy: `hanota board deploy --board sim-ppmid --sim-dir DIR` (mpremote over the sim's "
        "raw console pty, not the emulated link)."
    )
    s.notes.append(f"Fleet transfer states: {', '.join(sorted(set(f['states'])))}; per-board "
                   f"seconds min/median/max {min(per):.2f}/{statistics.median(per):.2f}/{max(per):.2f}. "
                   f"Cold starts (ms): {', '.join(f'{c * 1000:.0f}' for c in one['cold_s'])}.")  # fmt: skip
    if f["note"]:
        s.notes.append(f["note"])
    s.data = {"fleet": f, "fleet_2x": big, "one": one}
    return s
