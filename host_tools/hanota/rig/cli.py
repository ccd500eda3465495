"""`hanota rig update`: one board, fresh from the factory, updated through the hub."""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path

from ..output import CommandError, emit_json, log, parse_int


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("rig", help="hardware-in-the-loop rig: update a board end to end")
    p.set_defaults(area_parser=p)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    s = sub.add_parser("update", help="fresh board + hub + images: run one update to its end",
                       description=_UPDATE_DOC)  # fmt: skip
    s.add_argument("--board", default="sim-ppmid", help="board definition (sim-* boards)")
    s.add_argument("--image", required=True, nargs="+", type=Path, metavar="FILE",
                   help="OTA files of one submission: the full image's fragments and/or "
                   "delta files ('hanota image build --base'); the hub sends the board the "
                   "delta from the version it runs, else the full image")  # fmt: skip
    s.add_argument("--trust", required=True, action="append", type=Path, metavar="PUB.pem",
                   help="manufacturer public key the board trusts and the hub verifies with "
                   "(repeatable)")  # fmt: skip
    s.add_argument("--factory-version", type=parse_int, default=0x01000000,
                   help="version of the factory app the rig builds from this checkout "
                   "(default 0x01000000; ignored with --factory-app)")  # fmt: skip
    s.add_argument("--factory-app", type=Path, metavar="OLD.bin",
                   help="sim: start the fresh board with exactly these app bytes in ota_0 "
                   "('hanota app build' output; its header names the version), e.g. the "
                   "base a delta was built from")  # fmt: skip
    s.add_argument("--link", default="direct", help="link profile (direct, uart-115200, ...)")
    s.add_argument("--heap", help="MicroPython heap of the sim board (e.g. 64k)")
    s.add_argument("--cut-at", type=parse_int, help="cut power at flash operation N")
    s.add_argument("--supplier", action="append", help="suppliers (first one submits)")
    s.add_argument("--activate-at", help="now (default), +SECONDS, ISO time")
    s.add_argument("--drop", type=float, default=0.0, help="link: drop this share of frames")
    s.add_argument("--ber", type=float, default=0.0, help="link: bit error rate")
    s.add_argument("--seed", type=int, default=0, help="link fault seed")
    s.add_argument("--timeout", type=float, default=240.0, help="seconds")
    s.add_argument("--block-size", type=int, default=254,
                   help="the hub's largest Image Block Response data, 1..254 (default 254)")  # fmt: skip
    s.add_argument("--stall-timeout", type=float, default=120.0,
                   help="seconds without a request before the hub fails a transfer "
                   "(transfer-failure alert; the board may still resume it; default 120)")  # fmt: skip
    s.add_argument("--workdir", type=Path, help="keep the board, hub state and logs here")
    s.add_argument("--port", help="real board: its console port, read for the heap report")
    s.add_argument("--hub-port", help="real board: its HAN UART, served by the hub")
    s.add_argument("--record", type=Path, help="real board: its provisioning record")
    s.add_argument("--console-baud", type=int, default=115200, help="real board: console baud")
    s.add_argument("--no-heap-report", action="store_true",
                   help="sim: do not switch the agent's heap report on (peak_heap is null)")  # fmt: skip
    s.add_argument("--lg-coordinator", metavar="HOST:PORT", default=os.environ.get("LG_COORDINATOR"),
                   help="labgrid coordinator of the places given by --lg-place (default: "
                   "$LG_COORDINATOR)")  # fmt: skip
    s.add_argument("--lg-place", action="append", metavar="NAME",
                   help="labgrid place to acquire, flash, provision and update (repeatable; "
                   "a glob such as 'sim-ppmid-*' takes every match); several update at once "
                   "through one hub")  # fmt: skip
    s.add_argument("--dry-run", action="store_true", help="print the plan, run nothing")
    s.add_argument("--json", action="store_true", help="one JSON document on stdout")
    s.set_defaults(func=cmd_update)


_UPDATE_DOC = """A fresh board (sim: built here, or the app bytes of --factory-app), the hub
in process, the images submitted as one submission, run to the end. Deltas and the full
image go together: `--factory-app v1.bin --image full/*.zigbee delta/*.zigbee` shows the
hub choosing (the JSON's "delta" is true when the delta was delivered; "firmware_bytes"
is the target's length beside "image_bytes", the OTA bytes sent). With --lg-coordinator
and --lg-place, the boards of labgrid places (any host) instead: acquired, flashed and
provisioned through their drivers, updated at once through one hub, released
(docs/labgrid.md)."""


def cmd_update(args: argparse.Namespace) -> int:
    from hanota.hub import HubError
    from hanota.hub.view import make_view
    from hanota.link import profiles
    from hanota.link.faults import Faults

    from .update import UpdateOptions, run_update

    try:
        prof = profiles.get(args.link)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if args.factory_app and args.hub_port:
        raise CommandError("--factory-app is for a sim board: a real board runs what it was "
                           "flashed with")  # fmt: skip
    opts = UpdateOptions(
        images=args.image, trust=args.trust, board=args.board, factory_app=args.factory_app,
        factory_version=args.factory_version, link=prof.name, heap=args.heap,
        cut_at=args.cut_at, faults=Faults(seed=args.seed, drop=args.drop, ber=args.ber),
        suppliers=args.supplier or ["supplier-a"], activate_at=args.activate_at,
        timeout_s=args.timeout, block_size=args.block_size,
        stall_timeout_s=args.stall_timeout, workdir=args.workdir, port=args.hub_port, record=args.record,
        baud=int(prof.baud * 10) or 115200, console=args.port, console_baud=args.console_baud,
        heap_report=not args.no_heap_report,
    )  # fmt: skip
    if args.port and not args.hub_port:
        raise CommandError("--port is a real board's console: give its HAN UART with --hub-port "
                           "(and its record with --record)")  # fmt: skip
    if args.hub_port and not args.record:
        raise CommandError("--hub-port needs --record (the board's provisioning record)")
    if args.lg_place and (args.hub_port or args.port):
        raise CommandError("--lg-place is a labgrid place's board: not with --hub-port/--port")
    if args.lg_place and not args.lg_coordinator:
        raise CommandError("--lg-place needs --lg-coordinator HOST:PORT (or $LG_COORDINATOR)")
    if args.dry_run:
        return _plan(opts, args.json, args.lg_coordinator, args.lg_place)
    try:
        if args.lg_place:
            from .lgrun import run_places

            res = run_places(opts, args.lg_coordinator, args.lg_place,
                             view=lambda hub: _view(hub, make_view))  # fmt: skip
        else:
            res = asyncio.run(run_update(opts, view=lambda hub: _view(hub, make_view)))
    except (HubError, TimeoutError, OSError) as exc:
        raise CommandError(f"rig update: {exc}") from None
    if args.json:
        emit_json(res)
    else:
        _text(res)
    return 0 if res["ok"] else 1


def _view(hub, make_view) -> None:  # noqa: ANN001
    view = make_view(hub)
    if view is not None:
        view.start()


def _plan(opts, as_json: bool, coordinator: str | None = None,
          places: list[str] | None = None) -> int:  # noqa: ANN001  # fmt: skip
    if places:
        steps = [
            f"places: acquire {' '.join(places)} on the labgrid coordinator {coordinator} "
            "(refused, nothing touched, if someone else holds one)",
            f"board: power on; the {opts.board} factory app of version "
            f"0x{opts.factory_version:08x} written over the console (mpremote), the store "
            "formatted; power cycle; provisioned over the console; power cycle",
            f"hub: in process, serves each place's exported HAN link (link profile {opts.link})",
        ]
    elif opts.port:
        steps = [
            f"board: the real board of {opts.record} (flashed and provisioned already: "
            "'hanota board flash ... --heap-report')",
            f"hub: in process, enrols {opts.record}, serves the HAN UART {opts.port} with "
            f"pyserial at {opts.baud} baud 8N1 (link profile {opts.link}, no emulator)",
            (f"console: {opts.console} read with pyserial at {opts.console_baud} baud for the "
             "agent's heap report (a 'hanota board monitor' on it is paused, then resumed)")
            if opts.console else "console: not read (no --port): peak_heap will be null",
        ]  # fmt: skip
    else:
        app = (f"factory app {opts.factory_app}" if opts.factory_app else
               f"factory version 0x{opts.factory_version:08x}")  # fmt: skip
        steps = [
            f"board: fresh {opts.board} sim board, {app}, trusting "
            + ", ".join(map(str, opts.trust))
            + (", agent_config.json heap_report on" if opts.heap_report else ""),
            f"hub: in process, link profile {opts.link} through the link emulator",
        ]
    steps += [
        f"submit: as {opts.suppliers[0]}: " + " ".join(map(str, opts.images)),
        "run: until activation/rollback/refusal and every due alert",
    ]
    if places:
        steps.append("places: powered off and released")
    if as_json:
        emit_json({"dry_run": True, "steps": steps})
    else:
        for s in steps:
            log(s)
    return 0


def _text(res: dict) -> None:
    def v(x: int | None) -> str:
        return "unknown" if x is None else f"0x{x:08x}"

    print(f"{'ok' if res['ok'] else 'FAILED'}: {v(res['before_version'])} -> running "
          f"{v(res['running_version'])} (reported {v(res['reported_version'])}), "
          f"activation {res['activation']}" +
          (f", rejected: {res['rejected']}" if res["rejected"] else ""))  # fmt: skip
    print(f"{'delta' if res['delta'] else 'full image'}: {res['image_bytes']} image bytes "
          f"for {res['firmware_bytes']} firmware bytes in {res['transfer_seconds']} s over "
          f"{res['link_profile']} ({res['link_bytes']} link bytes), peak heap {res['peak_heap']}")  # fmt: skip
    for a in res["alerts"]:
        print(f"  {a['at']} {a['supplier']:<12} {a['kind']:<22} {v(a['version'])}")
