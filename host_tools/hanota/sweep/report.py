"""Totals, the JSON document and the lines a person reads (no colour codes anywhere)."""

from __future__ import annotations

import shlex
from collections import Counter
from typing import Any

from hanota.board import defs

from .plan import OpMap
from .updates import BOARD, describe


def progress(res: dict[str, Any], n: int, total: int) -> str:
    state = (
        "survived"
        if res["survived"]
        else "FAILED " + "; ".join(f"{k}: {v}" for k, v in res["failed"].items())
    )
    secs = res.get("facts", {}).get("seconds", "?")
    return (
        f"sweep: [{n}/{total}] {res['id']} ({res['phase']}): {res['outcome']}, {state} [{secs} s]"
    )


def build(chosen: list[Any], built: dict[str, Any], refs: dict[str, Any],
          results: list[dict[str, Any]], opts: Any, seconds: float) -> dict[str, Any]:  # fmt: skip
    updates, ops_total, counted = {}, 0, set()
    for u in chosen:
        ref = refs[u.ref_key]
        rs = [r for r in results if r["update"] == u.name]
        ops = ref["facts"].get("ops", 0)
        if ref["survived"] and u.ref_key not in counted:  # swept, each image once
            counted.add(u.ref_key)
            ops_total += ops
        m = OpMap.from_marks(ops, ref["marks"]) if ref["survived"] else None
        updates[u.name] = {
            **describe(u, built[u.name]),
            "cuts": u.cuts,
            "ops": ops,
            "op_map": m.to_json() if m else None,
            "reference": {
                "survived": ref["survived"],
                "outcome": ref["outcome"],
                "failed": ref["failed"],
            },  # fmt: skip
            "tried": len(rs),
            "survived": sum(r["survived"] for r in rs),
            "outcomes": dict(Counter(r["outcome"] for r in rs)),
            "by_phase": _by_phase(rs),
        }
    failures = [_failure(r, opts) for r in results if not r["survived"]]
    failures += [_failure(refs[k], opts) for k in refs if not refs[k]["survived"]]
    tried = len(results)
    survived = sum(r["survived"] for r in results)
    return {
        "board": BOARD,
        "heap": opts.heap or defs.load(BOARD).get("heap"),
        "quick": opts.quick,
        "jobs": opts.jobs,
        "seed": opts.seed,
        "size": opts.size,
        "max_size": opts.max_size,
        "seconds": round(seconds, 1),
        "tried": tried,
        "survived": survived,
        "ops": ops_total,
        "power_cuts": sum(r.get("facts", {}).get("power_cuts", 0) for r in results),
        "power_cycles": sum(r.get("facts", {}).get("power_cycles", 0) for r in results),
        "updates": updates,
        "failures": failures,
        "ok": not failures,
        "line": last_line(tried, survived, ops_total),
    }


def last_line(tried: int, survived: int, ops: int) -> str:
    return f"sweep: {tried} cuts tried, {survived} survived, {ops} flash operations"


def _by_phase(rs: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    out: dict[str, Counter] = {}
    for r in rs:
        phase = (r["phase"] or "?").split(" / ")[0]
        if phase.startswith("fragment"):
            phase = "transfer"
        out.setdefault(phase, Counter())[r["outcome"] if r["survived"] else "FAILED"] += 1
    return {k: dict(v) for k, v in out.items()}


def _failure(r: dict[str, Any], opts: Any) -> dict[str, Any]:
    return {
        "id": r["id"],
        "cuts": r["cuts"],
        "cycles": r["cycles"],
        "phase": r["phase"],
        "outcome": r["outcome"],
        "failed": r["failed"],
        "workdir": r["workdir"],
        "repro": _repro(r, opts),
    }


def _repro(r: dict[str, Any], opts: Any) -> str:
    name = r["update"]
    base = ["python", "-m", "hanota.sweep", "--size", str(opts.size), "--max-size",
            str(opts.max_size), "--keep"]  # fmt: skip
    if r["cuts"] and len(r["cuts"]) == 1 and not r["id"].endswith("/reference"):
        return shlex.join(base + ["--update", f"{name}:{r['cuts'][0]}"])
    tag = r["id"].rsplit("/", 1)[-1]
    k = tag[len(tag.rstrip("0123456789")) :]
    runs = str(int(k) + 1) if k else "1"
    return shlex.join(base + ["--update", name, "--seed", str(opts.seed), "--runs", runs])


def text(doc: dict[str, Any]) -> list[str]:
    """The human summary (stdout without --json); the last line is `last_line`."""
    lines = []
    for name, u in doc["updates"].items():
        lines.append(f"{name}: {u['what']}; {u['fragments']} fragments {u['file_bytes']}, "
                     f"{u['ops']} flash operations; {u['survived']}/{u['tried']} survived; "
                     f"outcomes {u['outcomes']}")  # fmt: skip
        for phase, counts in u["by_phase"].items():
            lines.append(f"  {phase}: {counts}")
    for f in doc["failures"]:
        lines.append(f"FAILED {f['id']} cuts {f['cuts']} ({f['phase']}): {f['failed']}")
        lines.append(f"  reproduce: {f['repro']}  (board and hub kept in {f['workdir']})")
    lines.append(f"sweep: {doc['power_cuts']} power cuts and {doc['power_cycles']} power cycles "
                 f"in {doc['seconds']} s on {doc['jobs']} boards at a time "
                 f"(heap {doc['heap']})")  # fmt: skip
    lines.append(doc["line"])
    return lines
