"""python -m hanota.sweep [--quick] [--update NAME[:OPS]]... [--jobs N] [--json]

Power-cut sweep on the simulated board with the real MicroPython agent: a clean
reference run of each update counts its flash operations, then each one is cut.
Updates: plain, compressed, second, delta (each op cut), rollback (crashing app:
activation, trial boot, rollback ops), multi (seeded random cuts in a row), half
(half-provisioned board, power cycles). OPS: "1-40,170-" (op numbers of the reference run).
Progress goes to stderr; the last line is
`sweep: <tried> cuts tried, <survived> survived, <ops> flash operations`.
Exit status 1 if any cut (or reference run) did not survive, 2 on a usage error; SIGINT
or SIGTERM stops every worker and board (`sweep: stopped by SIGTERM`, status 128+signal).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hanota.output import emit_json, log
from hanota.paths import BUILD
from hanota.sim.appimage import AppError
from hanota.stopping import stoppable

from . import driver, plan, report
from .updates import UPDATES


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m hanota.sweep",
                                description=__doc__.split("\n")[3])  # fmt: skip
    p.add_argument("--update", action="append", metavar="NAME[:OPS]",
                   help=f"repeatable; names: {', '.join(UPDATES)} (default: all)")  # fmt: skip
    p.add_argument("--quick", action="store_true", help="a few cuts per update (make test)")
    p.add_argument("--jobs", type=int, default=3, help="boards at a time (default 3)")
    p.add_argument("--seed", type=int, default=1, help="seed of the random runs")
    p.add_argument("--runs", type=int, default=12, help="random runs of multi and half")
    p.add_argument("--size", type=int, default=300_000, help="new app bytes")
    p.add_argument("--max-size", type=int, default=80_000, help="OTA file (fragment) limit")
    p.add_argument("--timeout", type=float, default=20.0, help="seconds per run")
    p.add_argument("--watchdog-ms", type=int, default=3000, help="crashing app's trial watchdog")
    p.add_argument("--heap", metavar="SIZE", help="MicroPython heap of the boards, e.g. 64k "
                   "(default: the board's own)")  # fmt: skip
    p.add_argument("--workdir", type=Path, default=BUILD / "sweep", help="wiped first")
    p.add_argument("--keep", action="store_true", help="keep every run's board and hub")
    p.add_argument("--json", action="store_true", help="one JSON document on stdout")
    return p.parse_args(argv)


def chosen(specs: list[str] | None) -> dict[str, list[tuple[int, int]] | None]:
    out: dict[str, list[tuple[int, int]] | None] = {}
    for spec in specs or list(UPDATES):
        name, _, ops = spec.partition(":")
        if name not in UPDATES:
            raise ValueError(f"unknown update {name!r} (one of {', '.join(UPDATES)})")
        out[name] = plan.parse_ranges(ops) if ops else None
    return out


@stoppable("sweep")
def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        updates = chosen(args.update)
    except ValueError as exc:
        log(f"sweep: {exc}")
        return 2
    opts = driver.Options(
        updates=updates, workdir=args.workdir.resolve(), quick=args.quick, jobs=args.jobs,
        seed=args.seed, runs=args.runs, size=args.size, max_size=args.max_size,
        timeout=args.timeout, watchdog_ms=args.watchdog_ms, keep=args.keep, heap=args.heap,
        argv=sys.argv[1:] if argv is None else argv,
    )  # fmt: skip
    try:
        doc = driver.sweep(opts)
    except AppError as exc:  # --size smaller than the app, and the like: nothing was cut
        log(f"sweep: {exc}")
        return 2
    lines = report.text(doc)
    if args.json:
        emit_json(doc)
        for line in lines:
            log(line)
    else:
        for line in lines[:-1]:
            log(line)
        print(lines[-1], flush=True)
    return 0 if doc["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
