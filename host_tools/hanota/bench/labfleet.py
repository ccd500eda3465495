"""Lab fleet (issue 17): many sim boards updated at once through labgrid places (a local
lab: coordinator, exporter host processes, one place per board), the aggregate rate, and
the same number of local sim boards served with the same file in the same run.

Both runs use one in-process hub at the `direct` profile: an exported HAN link is raw TCP
to its host's endpoint with no link emulator in the way, so the local boards are served
unpaced too and the two aggregates differ only by what the lab puts between the hub and
the agent (TCP, the host's endpoint bridge, labgrid's bring-up of the board).
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from hanota.lab.up import Lab
from hanota.link import profiles
from hanota.rig import lgboard
from hanota.rig.session import RigHub

from . import fleet, simrun
from .linkeff import HEAP, _work
from .results import Bar, Figure, Section

# Boards brought up at once. Each bring-up is mostly waiting (two BOOT_S sleeps, sim boots
# behind power cycles) with bursts of CPU (two mpremote runs, a MicroPython boot); labgrid
# power calls are serialised by lgboard's lock.
WORKERS = 8
SUPPLIER = "supplier-a"
ANNOUNCE_S = 120.0
TRANSFER_S = 900.0


async def _one_submission(rig: RigHub, euis: list[str], files: list[Path]) -> dict[str, Any]:
    """Every board's announce, then one submission of `files` for all of them, timed as
    the fleet family times it (fleet.timed_submission)."""
    t = time.monotonic()
    await rig.wait(lambda: all(rig.reported(e) for e in euis), ANNOUNCE_S,
                   "every board's announce")  # fmt: skip
    heard = time.monotonic() - t
    res = await fleet.timed_submission(rig, euis, files, TRANSFER_S)
    return res | {"announce_wait_s": heard}


async def _local(bench: simrun.Bench, files: list[Path], n: int) -> dict[str, Any]:
    """`n` fresh local sim boards (as the fleet family makes them) on one hub, `direct`."""
    boards = [bench.board(HEAP, short_addr=i + 1) for i in range(n)]
    try:
        async with simrun.rig_for(bench.work / "hub-local", profiles.get("direct")) as rig:
            for sim, rec in boards:
                sim.start()
                await rig.add_sim(sim, rec)
            return await _one_submission(rig, [rec["eui64"] for _s, rec in boards], files)
    finally:  # the hub stops the boards it has; these stop whatever it never got
        for sim, _rec in boards:
            await asyncio.to_thread(sim.stop)


async def _served(made: list[lgboard.LabgridBoard], names: list[str], bench: simrun.Bench,
                  files: list[Path], workers: int) -> dict[str, Any]:  # fmt: skip
    """Bring every board up through its place, `workers` at a time in a thread pool, and
    link each to the hub as soon as it is up (`attach` then powers it into the agent, so
    the hub hears its boot announce); then one submission for all of them."""
    loop = asyncio.get_running_loop()
    up_s: dict[str, float] = {}

    def up(i: int) -> int:
        t0 = time.monotonic()
        lgboard.brought_up(made[i], trust=[bench.images.pub_path], suppliers=[SUPPLIER],
                           seed=f"bench-lab:{names[i]}:{bench.work}", short_addr=i + 1,
                           app=bench.factory, heap_report=False)  # fmt: skip
        up_s[names[i]] = time.monotonic() - t0
        return i

    async with simrun.rig_for(bench.work / "hub-lab", profiles.get("direct")) as rig:
        t = time.monotonic()
        with ThreadPoolExecutor(workers) as pool:
            try:
                for fut in asyncio.as_completed([loop.run_in_executor(pool, up, i)
                                                 for i in range(len(made))]):  # fmt: skip
                    await rig.add(made[await fut])  # its exported HAN link, socket://, raw
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)  # those not started yet
                raise
        bringup = time.monotonic() - t
        res = await _one_submission(rig, [b.record["eui64"] for b in made], files)
    return res | {"bringup_s": bringup, "bringup_per_board_s": [up_s[p] for p in names]}


def _through_places(bench: simrun.Bench, files: list[Path], n: int,
                    exporters: int) -> dict[str, Any]:  # fmt: skip
    """A Lab of `n` boards over `exporters` hosts; every place acquired, every board
    flashed and provisioned through it, one hub updating them all over the exported HAN
    links; boards powered off, places released and the lab stopped on the way out.
    The Lab, the labgrid environment and its boards live in this thread; bring-ups run in
    a worker pool (lgboard.brought_up may), the hub in asyncio.run here."""
    phases: dict[str, float] = {}
    workers = min(WORKERS, n)
    t = time.monotonic()
    with Lab(bench.work / "lab", boards=n, exporters=exporters) as lab:
        phases["lab_start_s"] = time.monotonic() - t
        names = lab.places
        hosts = {lab.host_of(p) for p in names}
        t = time.monotonic()
        with lgboard.acquired(lab.coordinator, names):
            phases["acquire_s"] = time.monotonic() - t
            env = lgboard.environment(lab.coordinator, names, bench.work / "labgrid")
            made = [lgboard.LabgridBoard(env.get_target(p), simrun.BOARD) for p in names]
            try:
                t = time.monotonic()
                res = asyncio.run(_served(made, names, bench, files, workers))
                phases["bringup_and_update_s"] = time.monotonic() - t
            finally:
                for b in made:  # left as a lab expects to find a place: off
                    with contextlib.suppress(Exception):
                        b.power(False)
                    b.stop()
                # no gRPC threads left while later families fork sim boards (docs/labgrid.md)
                lgboard.close_session()
            t = time.monotonic()  # from here: every place released
        phases["release_s"] = time.monotonic() - t
        t = time.monotonic()
    phases["lab_stop_s"] = time.monotonic() - t
    return res | {"phases": phases, "exporters": exporters, "hosts": sorted(hosts),
                  "workers": workers}  # fmt: skip


def measure(quick: bool = False) -> Section:
    # n and the file size are the fleet family's (4 boards / 10 kB quick, 32 / 40 kB full)
    n, exporters, size = (4, 2, 10_000) if quick else (32, 4, 40_000)
    s = Section("lab", "Lab fleet: boards updated at once through labgrid places")
    bench = simrun.Bench(_work())
    files = bench.files(simrun.small_app(simrun.V2, size), compress=False, name="fleet")
    t = time.monotonic()
    loc = asyncio.run(_local(bench, files, n))
    local_s = time.monotonic() - t
    lab = _through_places(bench, files, n, exporters)
    ups = lab["bringup_per_board_s"]
    ph = lab["phases"]
    s.add(
        Figure("boards", f"boards updated at once through labgrid places (of {n}, all completed)",
               lab["ok"], "boards", Bar(">=", 32, "boards")),
        Figure("aggregate", "aggregate image throughput through places", lab["aggregate"] / 1000,
               "kB/s"),
        Figure("local_boards", f"the same number of local sim boards completed (of {n})",
               loc["ok"], "boards"),
        Figure("local_aggregate", "aggregate image throughput, as many boards served locally",
               loc["aggregate"] / 1000, "kB/s"),
        Figure("ratio", "through places ÷ local aggregate", lab["aggregate"] / loc["aggregate"],
               ""),
        Figure("bringup_s", f"bring-up of all {n} boards through their places "
               f"({lab['workers']} at a time)", lab["bringup_s"], "s",
               note="each board linked to the hub, and so powered on, as soon as it is up"),
        Figure("bringup_board_s", "one board's bring-up (median)", statistics.median(ups), "s",
               note="power on, flash the factory app and provision over the console with "
               "mpremote, a power cycle between, then off until linked"),
        Figure("lab_start_s", f"lab start: coordinator, {exporters} hosts, {n} boards created "
               "and booted, places", ph["lab_start_s"], "s"),
    )  # fmt: skip
    s.method = (
        f"A local labgrid lab (`hanota.lab.up.Lab`): a labgrid coordinator and {exporters} "
        f"exporter host processes on 127.0.0.1 with {n} sim boards (`sim-ppmid`, the real "
        f"agent under MicroPython at the board's own heap, {HEAP}), one place per board, "
        "boards round-robin over the hosts. Every place acquired with `labgrid-client "
        "acquire`; each board brought up through its place (`rig.lgboard.brought_up`: power "
        "on through labgrid's NetworkPowerDriver, the bench's factory app flashed and the "
        "identity provisioned over the exported console with mpremote, then off; powered "
        "on by `attach` once the hub serves its HAN link), "
        f"{lab['workers']} boards at a time; bring-up is timed per board and for all. One "
        "in-process hub (`RigHub`, profile `direct`) serves every board's exported HAN link "
        "(`socket://`, raw TCP to the host's endpoint bridge and the board's pty, no link "
        "emulator), each linked as soon as its bring-up returns and only then powered into "
        "the agent, so the hub hears its boot announce; once the hub has heard every board, "
        "one submission of a "
        f"{lab['file_bytes']:,}-byte uncompressed OTA file (the fleet family's file at its "
        f"{n}-board size) for all of them; aggregate = boards × file bytes ÷ (first block "
        "the hub served .. the last board's Upgrade End Request, both the hub's own "
        "stamps). Side by side, earlier in the same run with no lab running: the same "
        f"number of fresh local sim boards, same agent, heap and file, through one hub at "
        "`direct` (each board's HAN pty through the link emulator with no pacing), after "
        "every board's DEVICE_ANNOUNCE, measured the same way. A board counts as completed unless its transfer ended failed or "
        "discarded."
    )  # fmt: skip
    pl, pr = lab["per_board_s"], loc["per_board_s"]
    s.notes.append(
        f"Through places: transfer states {', '.join(sorted(set(lab['states'])))}; per-board "
        f"seconds min/median/max {min(pl):.2f}/{statistics.median(pl):.2f}/{max(pl):.2f}; "
        f"span {lab['span_s']:.2f} s; hosts {', '.join(lab['hosts'])}. Local: states "
        f"{', '.join(sorted(set(loc['states'])))}; per-board seconds min/median/max "
        f"{min(pr):.2f}/{statistics.median(pr):.2f}/{max(pr):.2f}; span {loc['span_s']:.2f} s."
    )  # fmt: skip
    s.notes.append(
        f"Bring-up seconds per board min/median/max {min(ups):.1f}/{statistics.median(ups):.1f}/"
        f"{max(ups):.1f}. Phases (s): lab start {ph['lab_start_s']:.1f}, acquire "
        f"{ph['acquire_s']:.1f}, bring-up and update through places "
        f"{ph['bringup_and_update_s']:.1f} (of which bring-up {lab['bringup_s']:.1f}, then "
        f"{lab['announce_wait_s']:.1f} until every board was heard), release {ph['release_s']:.1f}, "
        f"lab stop {ph['lab_stop_s']:.1f}; local run (boards created, booted, updated) "
        f"{local_s:.1f}."
    )  # fmt: skip
    s.notes.append(
        "What differs between the two lines: a local board's HAN pty is read and written by "
        "a LinkEmulator (unpaced at `direct`) on the hub's own event loop; a place's by its "
        "host's endpoint bridge, in that host's process, then TCP into the hub."
    )
    if bench.note:
        s.notes.append(bench.note)
    s.data = {"places": lab, "local": loc | {"wall_s": local_s}}
    return s
