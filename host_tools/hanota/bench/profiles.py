"""Link efficiency per link profile: the same OTA file through each shared profile
(direct, uart-115200, uart-921600, han) to a fresh sim board."""

from __future__ import annotations

import asyncio
from typing import Any

from hanota.link import profiles

from . import simrun
from .linkeff import HEAP, _work
from .results import Bar, Figure, Section

NAMES = ("direct", "uart-115200", "uart-921600", "han")


async def _runs(quick: bool) -> tuple[list[dict[str, Any]], str]:
    bench = simrun.Bench(_work())
    # ~4 s at 921600: the transfer the issue measured 0.82 of line rate in (issue 18)
    size = 24_000 if quick else 360_000
    files = bench.files(simrun.small_app(simrun.V2, size), compress=False, name="profiles")
    out = []
    for name in NAMES:
        prof = profiles.get(name)
        r = await simrun.transfer(bench, prof, files, heap=HEAP, timeout=900)
        rate = r["file_bytes"] / r["seconds"]
        out.append({"profile": name, "line": prof.baud, "block": prof.max_block,
                    "latency_ms": prof.latency_s * 1000, "bytes": r["file_bytes"],
                    "seconds": r["seconds"], "rate": rate, "state": r["state"],
                    "wire": r["link"].get("b2a", {}).get("bytes_out", 0),
                    "efficiency": rate / prof.baud if prof.baud else None})  # fmt: skip
    return out, bench.note


def measure(quick: bool = False) -> Section:
    runs, note = asyncio.run(_runs(quick))
    s = Section("profiles", "Link efficiency per link profile")
    for r in runs:
        key = r["profile"].replace("-", "_")
        s.add(Figure(f"{key}_rate", f"{r['profile']}: image bytes/s", r["rate"], "B/s"))
        if r["efficiency"] is not None:
            bar = Bar(">=", 0.88, "", "issue 18") if r["profile"].startswith("uart") else None
            s.add(Figure(f"{key}_eff", f"{r['profile']}: image bytes/s ÷ line rate",
                         r["efficiency"], "", bar))  # fmt: skip
    s.method = (
        f"One {runs[0]['bytes']:,}-byte uncompressed OTA file (a valid small sim app) sent to "
        f"a fresh sim board (the real agent at `-X heapsize={HEAP}`) through `LinkEmulator` "
        "with each profile shared by rig, hub and bench (`hanota.link.profiles`); time from "
        "the first block served to the Upgrade End Request the hub received (its own "
        "clock, not a poll). Line rate in bytes/s (8N1: "
        "baud ÷ 10; `han`: 250 kbit/s); `direct` is unpaced, so it has no ratio: its rate is "
        "what the agent and hub reach with no link limit over a pty."
    )
    rows = [[r["profile"], f"{r['line']:,.0f}" if r["line"] else "unpaced", str(r["block"]),
             f"{r['latency_ms']:g}", f"{r['seconds']:.2f}", f"{r['rate']:,.0f}",
             f"{r['efficiency']:.3f}" if r["efficiency"] is not None else "-",
             f"{r['bytes'] / r['wire']:.3f}" if r["wire"] else "-", r["state"]]
            for r in runs]  # fmt: skip
    s.tables.append((["profile", "line B/s", "block", "latency ms", "seconds", "image B/s",
                      "÷ line", "image ÷ hub→board bytes", "hub state"], rows))  # fmt: skip
    s.notes.append(
        "image ÷ hub→board bytes is the ceiling framing leaves the ratio to line rate: a "
        "254-byte block travels in a 281-byte frame (ZCL header 17, link header and CRC 7, "
        "stuffing and delimiter 3), plus the offer, the head and the Upgrade End exchange. "
        "What the ratio misses below it is per-file time: the head's signature checks before "
        "the first page is asked, and the read-back of the slot before the Upgrade End."
    )
    if note:
        s.notes.append(note)
    s.data = {"runs": runs}
    return s
