"""Agent ingest MB/s with no link limit, and peak live heap during an update, both on the
MicroPython unix port through agentrun (the real agent, fake board, in-process CH double)."""

from __future__ import annotations

from typing import Any

from . import agentrun
from .mpy import MpyError
from .results import Bar, Figure, Section

HEAPS = ("64k", "160k", "256k", "2m")  # tried in order: QUALITY.md's 64k first


def _run(size: int, **kw: Any) -> tuple[dict[str, Any], str, list[str]]:
    """One update at the smallest heap of HEAPS that completes it; failures kept."""
    failures = []
    for heap in HEAPS:
        try:
            return agentrun.update(size, heap=heap, **kw), heap, failures
        except MpyError as exc:
            last = str(exc).strip().splitlines()[-1]
            failures.append(f"{heap}: {last}")
            if "MemoryError" not in str(exc):
                raise
    raise MpyError("; ".join(failures))


def _heap_note(heap: str, failures: list[str]) -> str:
    if not failures:
        return ""
    return f"ran at {heap}: " + "; ".join(failures)


def measure_ingest(quick: bool = False) -> Section:
    size = 200_000 if quick else 2_000_000
    s = Section("ingest", "Agent ingest with no link limit (unix port)")
    rows = []
    for compress in (False, True):
        doc, heap, fails = _run(size, compress=compress, max_size=750_000)
        agent_us = doc["us"] - doc["double_us"]
        kind = "compressed" if compress else "uncompressed"
        rows.append([kind, f"{doc['file_bytes']:,}", str(doc["fragments"]), str(doc["blocks"]),
                     f"{doc['us'] / 1e6:.2f}", f"{doc['double_us'] / 1e6:.2f}", heap,
                     _heap_note(heap, fails) or "-"])  # fmt: skip
        s.data[kind] = doc | {"heap": heap, "heap_failures": fails}
        key = "compressed" if compress else "uncompressed"
        bars = (Bar(">=", 2, "MB/s"), Bar(">=", 10, "MB/s", "stretch")) if not compress else (None,)
        for i, bar in enumerate(bars):
            s.add(Figure(f"{key}_mbs" + ("_stretch" if i else ""),
                         f"ingest, {kind} image: OTA file MB/s (agent time)",
                         doc["file_bytes"] / agent_us, "MB/s", bar))  # fmt: skip
        s.add(Figure(f"{key}_fw_mbs", f"ingest, {kind} image: firmware MB/s (agent time)",
                     doc["firmware"] / agent_us, "MB/s"))  # fmt: skip
        s.add(Figure(f"{key}_wall_mbs", f"ingest, {kind}: OTA file MB/s incl. the CH double",
                     doc["file_bytes"] / doc["us"], "MB/s"))  # fmt: skip
    s.method = (
        f"A {size:,}-byte firmware (fake-board app header + the sim pad asset) signed into "
        "≤ 750,000-byte fragments. The real agent (`otaclient.agent.Agent`, compiled with "
        "`mpy-cross` as frozen code would be) runs under the MicroPython unix port on the agent "
        "tests' strict fake board (`tests/fakes.py`: file-backed flash refusing writes to "
        "unerased bytes, counted operations) wired to their in-process CH double "
        "(`tests/ota_double.py`) through a zero-latency, unpaced fake line. Timed from boot "
        "to the last fragment verified in flash (read back and hashed) and Upgrade End "
        "Request SUCCESS: framing, ZCL, download, verifier (SHA-256, inflate, signature per "
        "fragment), reassembly, flash erase/write. The double runs in the same process; its "
        "time is measured around each call and subtracted ('agent time'); the wall figure "
        "keeps it. MB = 10^6 bytes."
    )
    s.tables.append((["image", "OTA bytes", "fragments", "blocks", "wall s", "double s",
                      "heap", "heap note"], rows))  # fmt: skip
    return s


def measure_heap(quick: bool = False) -> Section:
    sizes = (100_000, 300_000) if quick else (100_000, 1_000_000, 4_000_000)
    s = Section("heap", "Peak live heap during an update")
    rows, peaks = [], []
    for size in sizes:
        doc, heap, fails = _run(size, probe=True)
        peaks.append(doc["peak_net"])
        rows.append([f"{size:,}", str(doc["fragments"]), str(doc["boundaries"]), heap,
                     f"{doc['idle']:,}", f"{doc['peak_raw']:,}", f"{doc['peak_net']:,}",
                     ", ".join(f"{p:,}" for p in doc["frag_peaks"]) or "-",
                     _heap_note(heap, fails) or "-"])  # fmt: skip
        s.data[str(size)] = doc | {"heap": heap, "heap_failures": fails}
        s.add(Figure(f"peak_{size}", f"peak above idle, {size:,}-byte image", doc["peak_net"],
                     "bytes", Bar("<=", 16384, "bytes")))  # fmt: skip
    growth = peaks[-1] - peaks[0]
    # no bars on 64k and flatness here: the CH double, its images and its records share
    # the heap; the sim-board family (simheap) measures the agent alone against them
    s.add(Figure("growth", f"peak growth {sizes[0]:,} → {sizes[-1]:,} bytes, fixtures' records "
                 "included (the agent alone: the sim-board family)", growth, "bytes"))  # fmt: skip
    s.method = (
        "The ingest set-up (real agent as .mpy on the fake board with the CH double, unix port) "
        "with a probe on `client.on_boundary` (called at every block and fragment boundary): "
        "`gc.collect(); gc.mem_alloc()` minus idle (the same after boot, before the first "
        "block). 'raw' is that; 'net' also subtracts the bytes of CH responses queued in the "
        "fake serial line at that moment (they would sit in the UART driver's buffer, outside "
        "the MicroPython heap, on a board). Each update is run at `-X heapsize=64k` first; if "
        "it fails with MemoryError it is rerun at the next larger heap (160k, 256k, then 2m) so the "
        "above-idle figure still exists, and the table says so (with the fixtures in the heap "
        "it never fits 64k: QUALITY.md's 64k and flatness are judged on the sim board, "
        "'The agent's heap on a sim board'). The run stops once the last fragment "
        "is verified in flash (activation is not part of the transfer)."
    )
    s.tables.append((["image bytes", "fragments", "boundaries", "heap", "idle alloc",
                      "peak raw", "peak net", "peak net per fragment",
                      "heap note"], rows))  # fmt: skip
    return s
