"""Append-only JSON-lines event log: the hub's durable state.

Every state change is one event; replaying the log rebuilds the hub (core.Hub.apply).
Transient progress is not logged (it goes to subscribers only).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

Event = dict[str, Any]


class EventLog:
    """One line per event: {"seq": n, "t": unix seconds, "kind": ..., ...fields}."""

    def __init__(self, path: Path | None):
        self.path = path
        self.seq = 0
        self._fh = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.seq = sum(1 for _ in read_events(path))
            self._fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 (held open)

    def append(self, kind: str, **fields: Any) -> Event:
        self.seq += 1
        ev: Event = {"seq": self.seq, "t": round(time.time(), 3), "kind": kind, **fields}
        if self._fh is not None:
            self._fh.write(json.dumps(ev, separators=(",", ":")) + "\n")
            self._fh.flush()
            os.fsync(self._fh.fileno())
        return ev

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def read_events(path: Path) -> Iterator[Event]:
    """Events in order; a torn last line (power cut while writing) is skipped."""
    if not path.exists():
        return
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                ev = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(ev, dict) and "kind" in ev:
                yield ev
