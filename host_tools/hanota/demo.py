"""`hanota demo`: the whole update end to end on two simulated boards, no input needed.

Builds app v1 and v2 (v2 padded to 900 kB, so its signed image is 2 fragments, R1),
starts the hub (trusting the manufacturer key) and sim-ihd + sim-ppmid (PPMID served by
two suppliers, R2); each supplier submits through the hub's control socket with its own
token; shows progress, activation, reboot, versions and every supplier alert, a table.
Exit 0 only if every check passed. Orchestration only: rig, hub, sim and image do the work.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from .output import log, parse_int
from .paths import BUILD
from .stopping import stoppable

V1, V2 = 0x01000000, 0x02000000
# board -> suppliers it serves (first one submits its update)
BOARDS = {"sim-ihd": ["supplier-a"], "sim-ppmid": ["supplier-b", "supplier-a"]}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the whole update end to end on two simulated boards")
    p.add_argument("--workdir", type=Path, default=BUILD / "demo", help="wiped and rebuilt")
    p.add_argument("--link", default="uart-921600", help="link profile of both boards")
    p.add_argument("--pad-to", type=parse_int, default=900000, help="size of app v2 (bytes)")
    p.add_argument("--timeout", type=float, default=240.0, help="seconds for the update")
    p.set_defaults(func=cmd_demo, area_parser=p)


@stoppable("demo")
def cmd_demo(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    shutil.rmtree(args.workdir, ignore_errors=True)
    inputs = build_inputs(args.workdir, args.pad_to)
    checks = asyncio.run(asyncio.wait_for(run(args, inputs), args.timeout + 120))
    failed = [name for name, good in checks if not good]
    for name, good in checks:
        log(f"demo: [{'ok' if good else 'FAILED'}] {name}")
    log(f"demo: {'all checks passed' if not failed else f'{len(failed)} check(s) failed'} "
        f"in {time.monotonic() - t0:.0f} s; logs and hub state in {args.workdir}")  # fmt: skip
    return 1 if failed else 0


def build_inputs(work: Path, pad_to: int) -> dict[str, Any]:
    """Manufacturer key, app v2 per board, and its signed fragmented image."""
    from .board import defs
    from .paths import FIRMWARE
    from .rig.factory import Images
    from .sim import appimage

    images = Images(work / "keys")
    out: dict[str, Any] = {"trust": images.pub_path, "files": {}}
    for name in BOARDS:
        board = defs.load(name)
        app = appimage.build(appimage.collect(FIRMWARE), V2, board, pad_to=pad_to)
        files = images.build(V2, board=name, payload=app, name=f"{name}-v2")
        out["files"][name] = files
        log(f"demo: {name}: app v2 {len(app)} bytes -> {len(files)} signed OTA files "
            f"({', '.join(str(f.stat().st_size) for f in files)} bytes, limit 750000)")  # fmt: skip
    return out


async def run(args: argparse.Namespace, inputs: dict[str, Any]) -> list[tuple[str, bool]]:
    from .hub import HubConfig, HubError, control
    from .hub.view import make_view
    from .rig import simboards
    from .rig.session import RigHub
    from .sim.runner import SimBoard

    work: Path = args.workdir
    cfg = HubConfig(confirm_delay_s=2.0, stagger_s=0.5, confirm_wait_s=args.timeout)
    checks: list[tuple[str, bool]] = []
    async with RigHub(work / "hub", cfg, args.link, trust=[inputs["trust"]]) as rig:
        ctl = await control.start(rig.hub, work / "hub")
        view = make_view(rig.hub)
        ticker = asyncio.create_task(_ticker(rig, progress=not sys.stderr.isatty()))
        links = {}
        for n, (name, sups) in enumerate(BOARDS.items(), 1):
            _i, rec = simboards.fresh(work / name, name, factory_version=V1,
                                      trust=[inputs["trust"]], suppliers=sups,
                                      seed=f"demo:{name}", short_addr=n)  # fmt: skip
            sim = SimBoard(work / name).start()
            links[name] = await rig.add_sim(sim, rec, name=name)
            log(f"demo: {name} booted v1 (HAN {sim.han_path}), suppliers {', '.join(sups)}")
        if view is not None:
            view.start()
        for name, b in links.items():
            await rig.wait(lambda e=b.eui: rig.heard(e), 60, f"{name}'s DEVICE_ANNOUNCE")
        subs = {}
        for name, b in links.items():
            supplier = BOARDS[name][0]
            subs[name] = await _submit(work / "hub", supplier, b.eui, inputs["files"][name])
            log(f"demo: {supplier} submitted v2 for {name} ({subs[name]['id']})")
        other = BOARDS["sim-ppmid"][1]
        try:
            await _submit(work / "hub", other, links["sim-ppmid"].eui,
                          inputs["files"]["sim-ppmid"])  # fmt: skip
            checks.append(("R2: a second supplier cannot override a pending image", False))
        except HubError as exc:
            log(f"demo: {other} tried too: refused ({exc})")
            checks.append(("R2: a second supplier cannot override a pending image", True))
        try:
            await rig.wait(lambda: _done(rig, subs, links), args.timeout, "both updates")
        except TimeoutError as exc:
            log(f"demo: {exc}")
        if view is not None:
            view.stop()
        ticker.cancel()
        ctl.close()
        Path(control.address(work / "hub")).unlink(missing_ok=True)
        checks += _checks(rig, links, subs)
        _table(rig, links)
    return checks


async def _submit(state: Path, supplier: str, eui: str, files: list[Path]) -> dict[str, Any]:
    """A supplier's submission over the control socket, with the token the hub issued it
    at enrolment (STATE/credentials/, as an operator would hand it over)."""
    from .hub import control
    from .hub import credentials as cr

    token = (state / "credentials" / cr.file_name(cr.supplier(supplier))).read_text().strip()
    paths = [str(Path(f).resolve()) for f in files]
    return await asyncio.to_thread(control.call, state, "submit", token=token, devices=[eui],
                                   files=paths)  # fmt: skip


def _done(rig: Any, subs: dict[str, Any], links: dict[str, Any]) -> bool:
    st = rig.hub.state
    ended = all(st.transfers[(subs[n]["id"], b.eui)].state in ("closed", "failed")
                for n, b in links.items())  # fmt: skip
    acts = [a for a in rig.hub.alerts() if a["kind"] == "activation"]
    want = sum(len(s) for s in BOARDS.values())
    return ended and not st.alerts_pending and len(acts) >= want


async def _ticker(rig: Any, progress: bool) -> None:
    """Board events (boots, reboots) as they happen; without a terminal also a progress
    line per transferring device every 2 s."""
    seen: dict[str, int] = {}
    n = 0
    while True:
        await asyncio.sleep(0.5)
        n += 1
        for b in rig.boards.values():
            for ev in b.board.sim.events[seen.get(b.name, 0) :]:
                if ev["event"] in ("boot", "confirmed", "power_cut", "watchdog", "rollback"):
                    ver = f" v0x{ev['version']:08x}" if ev.get("version") else ""
                    slot = f" {ev['slot']}" if ev.get("slot") else ""
                    log(f"demo: {b.name}: {ev['event']}{slot}{ver}")
            seen[b.name] = len(b.board.sim.events)
        if not progress or n % 4:
            continue
        for b in rig.boards.values():
            t = rig.hub.transfer(b.eui)
            if t is not None and t.state == "transferring":
                j = t.to_json()
                rate = t.sent / max(1e-3, (t.last_block or 0) - (t.first_block or 0))
                log(f"demo: {b.name}: {j['bytes']}/{j['total_bytes']} bytes "
                    f"({100 * j['bytes'] // j['total_bytes']}%), fragment "
                    f"{(j['fragment'] or 0) + 1}/{j['fragment_count']}, {rate / 1000:.1f} kB/s")  # fmt: skip


def _checks(rig: Any, links: dict[str, Any], subs: dict[str, Any]) -> list[tuple[str, bool]]:
    hub, out = rig.hub, []
    for name, b in links.items():
        t = hub.state.transfers[(subs[name]["id"], b.eui)]
        mine = [a for a in hub.alerts() if a["device"] == b.eui]
        out.append((f"{name}: image delivered in {len(t.submission.files)} fragments",
                    len(t.held) == len(t.submission.files) >= 2))  # fmt: skip
        out.append((f"{name}: running v2 after reboot", b.board.sim.running_version == V2))
        out.append((f"{name}: reported v2 to the hub (R7)", rig.reported(b.eui) == V2))
        out.append((f"{name}: hub inventory v2 from its signed alerts",
                    hub.state.devices[b.eui].version == V2))  # fmt: skip
        for s in BOARDS[name]:
            got = {a["kind"]: a for a in mine if a["supplier"] == s}
            out.append((f"{name}: {s} got a signed activation alert (success)",
                        got.get("activation", {}).get("result") == "success"))  # fmt: skip
            out.append((f"{name}: {s} got a version confirmation of v2 (R3)",
                        got.get("version-confirmation", {}).get("version") == V2))  # fmt: skip
        sub = BOARDS[name][0]
        kinds = {a["kind"] for a in mine if a["supplier"] == sub}
        out.append((f"{name}: {sub} got submission-processed and transfer-success",
                    {"submission-processed", "transfer-success"} <= kinds))  # fmt: skip
    return out


def _table(rig: Any, links: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title="hanota demo: supplier alerts")
    for col in ("board", "supplier", "alert", "version", "at", "detail"):
        t.add_column(col)
    names = {b.eui: n for n, b in links.items()}
    for a in sorted(rig.hub.alerts(), key=lambda a: (names.get(a["device"], ""), a["t"])):
        ver = f"0x{a['version']:08x}" if a.get("version") is not None else ""
        detail = a.get("result") or a.get("status") or ("matches" if a.get("matches") else "")
        t.add_row(names.get(a["device"], a["device"]), a["supplier"], a["kind"], ver,
                  (a["at"] or "")[11:23], str(detail))  # fmt: skip
    v = Table(title="hanota demo: boards")
    for col in ("board", "eui64", "before", "running", "reported", "bytes", "seconds"):
        v.add_column(col)
    for n, b in links.items():
        tr = max((x for x in rig.hub.state.transfers.values() if x.device == b.eui),
                 key=lambda x: x.sent, default=None)  # fmt: skip
        secs = (tr.last_block - tr.first_block) if tr and tr.first_block and tr.last_block else 0
        run_v = b.board.sim.running_version
        v.add_row(n, b.eui, f"0x{V1:08x}", f"0x{run_v:08x}" if run_v else "?",
                  f"0x{rig.reported(b.eui) or 0:08x}", str(tr.sent if tr else 0), f"{secs:.1f}")  # fmt: skip
    con = Console(file=sys.stdout, width=120)
    con.print(v)
    con.print(t)
