"""Throughput against block size and latency, from short real transfers through the
emulator (sim board + agent + hub), plotted as a PNG with matplotlib (Agg)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from hanota.link import profiles

from . import simrun
from .linkeff import HEAP, LINE, _work
from .results import Figure, Section

BLOCKS = (40, 64, 128, 192, 254)
LATENCIES_MS = (0, 2, 20)


async def _points(quick: bool) -> tuple[list[dict[str, Any]], str]:
    bench = simrun.Bench(_work())
    base = profiles.get("uart-115200")
    size = 8_000 if quick else 24_000
    files = bench.files(simrun.small_app(simrun.V2, size), compress=False, name="plot")
    blocks = (40, 254) if quick else BLOCKS
    lats = (0, 20) if quick else LATENCIES_MS
    out = []
    for lat in lats:
        for blk in blocks:
            prof = simrun.custom(base, block=blk, latency_s=lat / 1000)
            r = await simrun.transfer(bench, prof, files, heap=HEAP)
            out.append({"block": blk, "latency_ms": lat, "bytes": r["file_bytes"],
                        "seconds": r["seconds"], "state": r["state"],
                        "efficiency": r["file_bytes"] / r["seconds"] / LINE})  # fmt: skip
    return out, bench.note


def draw(points: list[dict[str, Any]], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for lat in sorted({p["latency_ms"] for p in points}):
        pts = sorted((p["block"], p["efficiency"]) for p in points if p["latency_ms"] == lat)
        ax.plot([b for b, _ in pts], [e for _, e in pts], marker="o", label=f"{lat} ms one-way")
    ceil = [(b, b / (b + 17 + 9)) for b in range(40, 256, 5)]
    ax.plot([b for b, _ in ceil], [c for _, c in ceil], ls="--", color="grey",
            label="framing ceiling b/(b+17+9)")  # fmt: skip
    ax.axhline(0.85, color="red", lw=0.8, ls=":", label="QUALITY.md bar 0.85 (254 B, 2 ms)")
    ax.set_xlabel("Image Block data size (bytes)")
    ax.set_ylabel("image bytes/s ÷ 11520 (115200 8N1)")
    ax.set_title("OTA throughput through the link emulator (real agent, sim board)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png)
    plt.close(fig)


def measure(quick: bool, png: Path) -> Section:
    points, note = asyncio.run(_points(quick))
    draw(points, png)
    s = Section("plot", "Throughput against block size and latency")
    size = points[0]["bytes"] if points else 0
    s.method = (
        f"One {size:,}-byte OTA file (a valid small sim app) per point, sent to a fresh sim "
        "board through `LinkEmulator` at 11,520 bytes/s with the hub's blocks capped at the "
        "block size and the given one-way latency; time from the first block served to the "
        "Upgrade End Request. Short transfers, so the fixed costs (first page request, the "
        "final signature check and flash read-back) weigh a little more than in the link family."
    )
    s.notes.append(f"![throughput against block size and latency]({png.name})")
    if note:
        s.notes.append(note)
    rows = [[str(p["block"]), str(p["latency_ms"]), f"{p['seconds']:.2f}", f"{p['efficiency']:.3f}",
             p["state"]] for p in points]  # fmt: skip
    s.tables.append(
        (["block bytes", "latency ms", "seconds", "bytes/s ÷ 11520", "hub state"], rows)
    )
    for p in points:
        if p["block"] == 254 and p["latency_ms"] == 2:
            s.add(
                Figure("eff_254_2ms", "254-byte blocks, 2 ms (short transfer)", p["efficiency"], "")
            )
    s.data = {"points": points, "png": str(png)}
    return s
