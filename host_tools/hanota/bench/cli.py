"""`hanota bench [--out FILE] [--only NAME,...] [--quick] [--json]`: run the measurement
families in one process and write the markdown report (and the plot beside it)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..output import CommandError, emit_json, log
from ..stopping import stoppable


def register(sub: argparse._SubParsersAction) -> None:
    from .run import FAMILIES

    p = sub.add_parser(
        "bench",
        help="measure speed, memory and fleet figures; write docs/benchmarks.md",
        description="Measure every QUALITY.md figure in one run and write a markdown "
        "report (method, machine, figures, bars, commands). Families: " + ", ".join(FAMILIES),
    )
    p.add_argument(
        "--out", type=Path, help="markdown file to write (default build/bench/benchmarks.md)"
    )
    p.add_argument("--only", help="comma-separated families to run (default: all)")
    p.add_argument("--quick", action="store_true", help="reduced sizes (tests, smoke runs)")
    p.add_argument("--json", action="store_true", help="one JSON document on stdout")
    p.set_defaults(func=cmd_bench, area_parser=p)


@stoppable("bench")
def cmd_bench(args: argparse.Namespace) -> int:
    from .. import paths
    from .run import FAMILIES, run_all

    names = list(FAMILIES)
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in FAMILIES]
        if unknown:
            raise CommandError(
                f"unknown bench family {', '.join(unknown)}; known: {', '.join(FAMILIES)}"
            )
    out = args.out or paths.BUILD / "bench" / "benchmarks.md"
    doc = run_all(names, out, quick=args.quick, argv=_argv(args))
    if args.json:
        emit_json(doc)
    else:
        for line in doc["summary_lines"]:
            log(line)
    log(f"bench: wrote {out}")
    return 0 if not doc["errors"] else 1


def _argv(args: argparse.Namespace) -> str:
    parts = ["hanota bench"]
    if args.only:
        parts.append(f"--only {args.only}")
    if args.quick:
        parts.append("--quick")
    if args.out:
        parts.append(f"--out {args.out}")
    return " ".join(parts)
