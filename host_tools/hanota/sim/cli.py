"""`hanota sim`: create, run and inspect simulated boards (logic in the modules beside)."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from ..output import emit_json, log, parse_int
from .create import FACTORY_VERSION, create


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sim", help="simulated boards running the real MicroPython unix port")
    p.set_defaults(area_parser=p)
    s = p.add_subparsers(dest="cmd", metavar="COMMAND")

    c = s.add_parser("create", help="lay out DIR/flash.bin with a factory app")
    c.add_argument("dir", type=Path, help="the board's directory (flash.bin, store, logs)")
    c.add_argument("--board", required=True, help="board name (hanota board list)")
    c.add_argument(
        "--factory-version",
        type=parse_int,
        default=FACTORY_VERSION,
        help=f"the factory app's version (default {FACTORY_VERSION:#010x})",
    )
    c.add_argument("--source", type=Path, help="app source tree (default: firmware/)")
    c.set_defaults(func=cmd_create)

    r = s.add_parser("run", help="boot the board; prints 'han: <pty>' and 'console: <pty>'")
    r.add_argument("dir", type=Path, help="the board's directory (hanota sim create)")
    r.add_argument("--board", help="with --create: board for a new DIR")
    r.add_argument("--create", action="store_true", help="create DIR first if it has no flash")
    r.add_argument("--heap", help="MicroPython heap (default: the board's, e.g. 64k)")
    r.add_argument("--cut-at", type=int, help="cut power in the middle of flash operation N")
    r.add_argument("--watchdog-ms", type=int, help="trial-boot watchdog (default: the board's)")
    r.set_defaults(func=cmd_run)

    i = s.add_parser("info", help="otadata, active slot, running version, ops count")
    i.add_argument("dir", type=Path, help="the board's directory")
    i.add_argument("--json", action="store_true", help="one JSON document on stdout")
    i.set_defaults(func=cmd_info)


def cmd_create(args: argparse.Namespace) -> int:
    board = create(args.dir, args.board, args.factory_version, args.source)
    log(f"sim: created {args.dir} for {board['name']} (factory app {args.factory_version:#010x})")
    return 0


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def cmd_run(args: argparse.Namespace) -> int:
    from .runner import SimBoard

    if args.create and not (args.dir / "flash.bin").exists():
        if not args.board:
            log("sim: --create needs --board NAME")
            return 2
        create(args.dir, args.board)
    board = SimBoard(args.dir, heap=args.heap, cut_at=args.cut_at, watchdog_ms=args.watchdog_ms)
    signal.signal(signal.SIGTERM, _terminate)
    board.start()
    sys.stdout.write(f"han: {board.han_path}\nconsole: {board.console_path}\n")
    sys.stdout.flush()
    seen = 0
    try:
        while board.halted is None:
            time.sleep(0.1)
            for ev in board.events[seen:]:
                log("sim: " + " ".join(f"{k}={v}" for k, v in ev.items() if k != "t"))
            seen = len(board.events)
    except KeyboardInterrupt:
        pass
    finally:
        board.stop()
    if board.halted:
        log(f"sim: board halted: {board.halted}")
        return 3
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from .status import describe

    doc = describe(args.dir)
    if args.json:
        emit_json(doc)
        return 0
    for e in doc["otadata"]:
        log(
            f"otadata[{e['sector']}]: seq={e['seq']:#x} state={e['state_name']} crc_ok={e['crc_ok']}"
        )
    log(f"active slot: {doc['active_slot']}  version: {doc['running_version']}  ops: {doc['ops']}")
    return 0
