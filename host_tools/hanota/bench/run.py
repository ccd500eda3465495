"""Run the chosen measurement families in order, time them, collect their Sections.

A family that fails becomes a Section with `error` set: the report says so plainly
rather than dropping it.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..output import log
from . import machine, report
from .results import Section


def _verify(quick: bool, ctx: dict[str, Any]) -> Section:
    from . import verify

    return verify.measure(quick)


def _parse(quick: bool, ctx: dict[str, Any]) -> Section:
    from . import throughput

    return throughput.measure(quick)


def _ingest(quick: bool, ctx: dict[str, Any]) -> Section:
    from . import ingest

    return ingest.measure_ingest(quick)


def _heap(quick: bool, ctx: dict[str, Any]) -> Section:
    from . import ingest

    return ingest.measure_heap(quick)


def _simheap(quick: bool, ctx: dict[str, Any]) -> Section:
    from . import simheap

    return simheap.measure(quick)


def _alerts(quick: bool, ctx: dict[str, Any]) -> Section:
    from . import alertlat

    return alertlat.measure(quick)


def _profiles(quick: bool, ctx: dict[str, Any]) -> Section:
    from . import profiles

    return profiles.measure(quick)


def _link(quick: bool, ctx: dict[str, Any]) -> Section:
    from . import linkeff

    return linkeff.measure(quick)


def _han(quick: bool, ctx: dict[str, Any]) -> Section:
    from . import linkeff

    return linkeff.measure_han(quick)


def _fleet(quick: bool, ctx: dict[str, Any]) -> Section:
    from . import fleet

    return fleet.measure(quick)


def _plot(quick: bool, ctx: dict[str, Any]) -> Section:
    from . import plot

    return plot.measure(quick, ctx["png"])


FAMILIES: dict[str, Callable[[bool, dict[str, Any]], Section]] = {
    "verify": _verify,
    "parse": _parse,
    "ingest": _ingest,
    "heap": _heap,
    "simheap": _simheap,
    "link": _link,
    "han": _han,
    "profiles": _profiles,
    "fleet": _fleet,
    "alerts": _alerts,
    "plot": _plot,
}


def run_one(name: str, quick: bool, ctx: dict[str, Any]) -> Section:
    log(f"bench: {name} ...")
    t0 = time.monotonic()
    try:
        sec = FAMILIES[name](quick, ctx)
    except Exception as exc:  # noqa: BLE001 - a failed family is reported, not fatal
        sec = Section(name, name, error=f"{type(exc).__name__}: {exc}")
        log(traceback.format_exc())
    sec.name = name
    sec.seconds = time.monotonic() - t0
    sec.command = sec.command or f"hanota bench --only {name}" + (" --quick" if quick else "")
    log(
        f"bench: {name} done in {sec.seconds:.1f} s"
        + (f" (error: {sec.error})" if sec.error else "")
    )
    return sec


def run_all(names: list[str], out: Path, *, quick: bool, argv: str) -> dict[str, Any]:
    facts = machine.facts()
    facts["argv"] = argv
    png = out.with_name(out.stem + "-throughput.png")
    ctx: dict[str, Any] = {"png": png}
    t0 = time.monotonic()
    sections = [run_one(n, quick, ctx) for n in names]
    facts["total_seconds"] = round(time.monotonic() - t0, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report.markdown(facts, sections, quick=quick))
    return {
        "machine": facts,
        "quick": quick,
        "out": str(out),
        "sections": {s.name: s.to_json() for s in sections},
        "summary": report.summary(sections),
        "summary_lines": report.summary_lines(sections),
        "errors": {s.name: s.error for s in sections if s.error},
    }
