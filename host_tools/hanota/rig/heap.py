"""The agent's heap report on its console, turned into the rig's `peak_heap`.

With `"heap_report": true` in the store's `agent_config.json` the agent prints
`heap: idle=<bytes>` once at start and `heap: peak=<bytes> idle=<bytes>` after each
fragment and Upgrade End, where bytes are `gc.mem_alloc()` right after `gc.collect()`
(QUALITY.md) and peak is the largest live heap at any block or fragment boundary since
that start. A board that reboots (activation, power cut) starts over with a new idle.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CONFIG = {"heap_report": True}  # merged into the board's agent_config.json
_IDLE = re.compile(rb"^heap: idle=(\d+)\s*$", re.M)
_PEAK = re.compile(rb"^heap: peak=(\d+) idle=(\d+)\s*$", re.M)


@dataclass
class HeapReport:
    peak_heap: int | None  # largest (peak - idle) of any report line: bytes above idle
    idle_heap: int | None  # the idle of that line (else the last idle line)
    peak_live: int | None  # the peak itself (live bytes)
    lines: int  # heap lines seen (idle and peak)

    def note(self) -> str | None:
        """Why peak_heap is null (for stderr), or None when it is known."""
        if self.peak_heap is not None:
            return None
        if self.lines == 0:
            return ("no 'heap:' line on the board's console: the agent does not report its "
                    "heap (agent_config.json heap_report) or the console was not read")  # fmt: skip
        return "the agent reported its idle heap but no peak (no fragment ended)"


def parse(text: bytes | str) -> HeapReport:
    """Heap figures from console output (any line endings, other output mixed in)."""
    data = text.encode() if isinstance(text, str) else text
    data = data.replace(b"\r", b"")
    idles = [int(m) for m in _IDLE.findall(data)]
    peaks = [(int(p), int(i)) for p, i in _PEAK.findall(data)]
    if peaks:
        p, i = max(peaks, key=lambda pi: pi[0] - pi[1])
        return HeapReport(max(0, p - i), i, p, len(idles) + len(peaks))
    return HeapReport(None, idles[-1] if idles else None, None, len(idles))


def with_report(config: dict | None) -> dict:
    """An agent_config.json body with the heap report switched on (other keys kept)."""
    return {**(config or {}), **CONFIG}
