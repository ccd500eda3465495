"""python -m hanota.fuzz --seconds N [--target NAME ...] [--engine E] [--json]

Runs each target for N seconds (atheris if importable, else a labelled hypothesis
run), prints one line per target and `fuzz: <targets> targets, <execs> executions,
<findings> findings`; exit status 1 on any finding, 2 if a run itself failed; SIGINT or
SIGTERM stops the running target (`fuzz: stopped by SIGTERM`, status 128+signal).
"""

from __future__ import annotations

import argparse
import sys

from hanota.fuzz import runner
from hanota.fuzz.targets import TARGETS
from hanota.output import emit_json, log
from hanota.stopping import stoppable


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m hanota.fuzz", description=__doc__.split("\n")[2])
    p.add_argument("--seconds", type=int, default=60, help="time per target (default 60)")
    p.add_argument("--target", action="append", choices=list(TARGETS), help="repeatable")
    p.add_argument("--engine", choices=["auto", "atheris", "hypothesis"], default="auto")
    p.add_argument("--max-len", type=int, default=0, help="libFuzzer -max_len override")
    p.add_argument("--json", action="store_true", help="one JSON document on stdout")
    return p.parse_args(argv)


@stoppable("fuzz")
def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    engine = args.engine
    if engine == "auto":
        engine = "atheris" if runner.atheris_available() else "hypothesis"
        if engine == "hypothesis":
            log(
                "fuzz: atheris is not importable: hypothesis fallback (random, not coverage-guided)"
            )
    elif engine == "atheris" and not runner.atheris_available():
        log("fuzz: atheris is not installed: pip install -r requirements-fuzz.txt")
        return 2
    results = []
    for target in args.target or list(TARGETS):
        results += runner.run([target], args.seconds, engine, args.max_len)
        if not args.json:
            print(results[-1].line(), flush=True)
    if args.json:
        emit_json({"results": [vars(r) for r in results], "summary": runner.summary(results)})
    else:
        print(runner.summary(results), flush=True)
    if any(r.findings for r in results):
        return 1
    return 2 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
