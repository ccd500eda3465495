"""`hanota lab`: a local labgrid lab of sim boards (logic in up.py and host.py)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..output import log, parse_int
from ..paths import BUILD
from ..sim.create import FACTORY_VERSION
from ..stopping import stoppable


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("lab", help="a local labgrid lab: coordinator, exporters, sim boards")
    p.set_defaults(area_parser=p)
    s = p.add_subparsers(dest="cmd", metavar="COMMAND")

    u = s.add_parser("up", help="start the lab; print 'coordinator: HOST:PORT' and "
                     "'place: NAME' lines; run until SIGINT/SIGTERM",
                     description=_UP_DOC)  # fmt: skip
    u.add_argument("--boards", type=int, default=4, help="sim boards, one place each "
                   "(default 4)")  # fmt: skip
    u.add_argument("--exporters", type=int, default=2, help="hosts, each with its own "
                   "labgrid exporter; boards go round-robin over them (default 2)")  # fmt: skip
    u.add_argument("--board", default="sim-ppmid", help="sim board name (default sim-ppmid)")
    u.add_argument("--factory-version", type=parse_int, default=FACTORY_VERSION,
                   help=f"factory app version of new boards (default {FACTORY_VERSION:#010x})")  # fmt: skip
    u.add_argument("--dir", type=Path, default=BUILD / "lab", help="the lab's directory: "
                   "lab.json, board flash files, coordinator state, logs (default build/lab)")  # fmt: skip
    u.set_defaults(func=cmd_up)


_UP_DOC = """A labgrid coordinator on 127.0.0.1 (a free port), M exporter hosts (each a
process with its own labgrid-exporter), N sim boards spread over them, one place per
board. Once all is up it prints 'coordinator: HOST:PORT' and one 'place: NAME' line per
board on stdout, then runs until Ctrl-C or SIGTERM and stops everything it started.
Update the boards with `hanota rig update --lg-coordinator HOST:PORT --lg-place NAME`;
DIR/lab.json names every endpoint. See docs/labgrid.md."""


@stoppable("lab")
def cmd_up(args: argparse.Namespace) -> int:
    from .up import Lab

    t0 = time.monotonic()
    with Lab(args.dir, boards=args.boards, exporters=args.exporters, board=args.board,
             factory_version=args.factory_version) as lab:  # fmt: skip
        lines = [f"coordinator: {lab.coordinator}"] + [f"place: {p}" for p in lab.places]
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()
        log(f"lab: up in {time.monotonic() - t0:.0f} s; {args.dir.resolve() / 'lab.json'} "
            "has every endpoint; Ctrl-C stops it")  # fmt: skip
        while True:
            time.sleep(3600)
