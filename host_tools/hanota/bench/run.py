"""Run the chosen measurement families in order, time them, collect their Sections.

A family that fails becomes a Section with `error` set: the report says so plainly
rather than dropping it.
"""

from __future__ import annotations

import importlib
import time
import traceback
from pathlib import Path
from typing import Any

from ..output import log
from . import machine, report
from .results import Section

# family -> (module of this package, its function); a module is imported only when its
# family runs. Each function takes `quick`; plot also the PNG path.
FAMILIES: dict[str, tuple[str, str]] = {
    "verify": ("verify", "measure"),
    "parse": ("throughput", "measure"),
    "ingest": ("ingest", "measure_ingest"),
    "heap": ("ingest", "measure_heap"),
    "simheap": ("simheap", "measure"),
    "link": ("linkeff", "measure"),
    "han": ("linkeff", "measure_han"),
    "profiles": ("profiles", "measure"),
    "fleet": ("fleet", "measure"),
    "lab": ("labfleet", "measure"),
    "alerts": ("alertlat", "measure"),
    "plot": ("plot", "measure"),
    "delta": ("delta", "measure"),
}


def _measure(name: str, quick: bool, ctx: dict[str, Any]) -> Section:
    module, func = FAMILIES[name]
    measure = getattr(importlib.import_module(f"{__package__}.{module}"), func)
    return measure(quick, ctx["png"]) if name == "plot" else measure(quick)


def run_one(name: str, quick: bool, ctx: dict[str, Any]) -> Section:
    log(f"bench: {name} ...")
    t0 = time.monotonic()
    try:
        sec = _measure(name, quick, ctx)
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
