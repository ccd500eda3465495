"""python -m hanota.faults [--quick] [--seed N] [--seeds K] [--class NAME ...] [--json]

Runs real updates (sim boards with the MicroPython agent, the hub emulator) under each
link fault class; prints a table and, last, `faults: <tried> transfers tried,
<completed> completed, <wrong> bytes wrong`. Exit status 0 only when every transfer
completed with 0 bytes wrong; 2 on a usage error; SIGINT or SIGTERM stops every board
(`faults: stopped by SIGTERM`, status 128+signal).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
from pathlib import Path

from hanota.output import emit_json, log
from hanota.stopping import stoppable

from . import campaign, scenarios


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m hanota.faults", description=__doc__.split("\n")[2])
    p.add_argument(
        "--quick", action="store_true", help=f"only {', '.join(scenarios.QUICK)}, one seed"
    )
    p.add_argument("--seed", type=int, default=1, help="first fault seed (default 1)")
    p.add_argument("--seeds", type=int, help="seeds per class (default 3; 1 with --quick)")
    p.add_argument("--class", dest="classes", action="append", metavar="NAME",
                   help="run only this fault class (repeatable): "  # argparse %-formats help: drop-2%%
                   + ", ".join(scenarios.BY_NAME).replace("%", "%%"))  # fmt: skip
    p.add_argument("--jobs", type=int, default=2, help="transfers at once (default 2)")
    p.add_argument("--board", default="sim-ppmid")
    p.add_argument("--link", default="uart-921600", help="link profile (default uart-921600)")
    p.add_argument("--pad-to", type=int, default=160_000, help="app size in bytes")
    p.add_argument("--max-size", type=int, default=60_000, help="OTA file size limit (fragments)")
    p.add_argument("--fault-s", type=float, default=120.0, help="faults on at most this long")
    p.add_argument("--resume-s", type=float, default=120.0, help="then the update must end")
    p.add_argument("--workdir", type=Path, help="keep boards, hub logs and console logs here")
    p.add_argument("--json", action="store_true", help="one JSON document on stdout")
    return p.parse_args(argv)


@stoppable("faults")
def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        chosen = scenarios.select(args.quick, args.classes)
    except ValueError as exc:
        log(f"faults: {exc}")
        return 2
    n = args.seeds or (1 if args.quick else 3)
    seeds = list(range(args.seed, args.seed + n))
    work, remove = campaign.workdir(args.workdir)
    try:
        plan = campaign.make_plan(work, args.board, args.pad_to, args.max_size,
                                  profile=args.link, fault_s=args.fault_s,
                                  resume_s=args.resume_s)  # fmt: skip
        log(f"faults: {len(chosen)} classes x {n} seeds, {len(plan.files)} OTA files "
            f"({plan.ota_bytes} bytes) of a {len(plan.firmware)}-byte app over {args.link}")  # fmt: skip
        results = asyncio.run(campaign.run_all(plan, chosen, seeds, work, args.jobs, log))
    finally:
        if remove:
            shutil.rmtree(work, ignore_errors=True)
    rows = campaign.table(results, chosen)
    total = campaign.summary(results)
    if args.json:
        emit_json({"link": args.link, "board": args.board, "app_bytes": len(plan.firmware),
                   "ota_files": len(plan.files), "ota_bytes": plan.ota_bytes, "seeds": seeds,
                   "classes": rows, "transfers": results, "summary": total})  # fmt: skip
        log(campaign.summary_line(total))
    else:
        print_table(rows)
        print(campaign.summary_line(total), flush=True)
    return 0 if total["completed"] == total["tried"] and total["bytes_wrong"] == 0 else 1


def print_table(rows: list[dict]) -> None:
    head = ("class", "tried", "done", "healed", "abandon", "restarts", "WFD", "wrong", "median s",
            "faults injected")  # fmt: skip
    out = [head]
    for r in rows:
        inj = ", ".join(f"{k} {v}" for k, v in sorted(r["faults"].items()) if v) or "-"
        med = "-" if r["median_s"] is None else f"{r['median_s']:.1f}"
        out.append((r["class"], r["tried"], r["completed"], r["healed"], r["abandoned"],
                    r["hub_restarts"], r["wait_for_data"], r["bytes_wrong"], med, inj))  # fmt: skip
    widths = [max(len(str(row[i])) for row in out) for i in range(len(head) - 1)]
    for row in out:
        cells = [str(c).ljust(w) for c, w in zip(row[:-1], widths, strict=True)]
        print("  ".join(cells + [str(row[-1])]).rstrip())
    sys.stdout.flush()
