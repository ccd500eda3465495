"""Live progress view of a hub on stderr: one bar per device with its rate (rich), or,
without a terminal, plain lines for the events that matter.

Reads hub events only; changes nothing.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from .core import Hub
from .inventory import UNKNOWN_VERSION

_LINE_KINDS = {
    "link-up", "link-down", "submit", "submit-refused", "transfer-start", "fragment-held",
    "transfer-complete", "transfer-failed", "discard", "activation-alert", "report",
    "meter-upgrade", "alert-raised", "server-error", "unknown-device", "frame-refused",
    "enrol-refused", "key-replaced", "trust-anchor", "image-chosen", "delta-refused",
}  # fmt: skip


class ProgressView:
    """rich progress bars per device (a terminal on stderr)."""

    def __init__(self, hub: Hub, stream: TextIO | None = None):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,  # fmt: skip
            TransferSpeedColumn,
        )

        self.hub = hub
        self.console = Console(file=stream or sys.stderr)
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
            TransferSpeedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[status]}"),
            console=self.console, transient=False,
        )  # fmt: skip
        self.tasks: dict[str, Any] = {}
        self._unsub: Any = None

    def start(self) -> None:
        self.progress.start()
        self._unsub = self.hub.subscribe(self.on_event)

    def stop(self) -> None:
        if self._unsub:
            self._unsub()
        self.progress.stop()

    def _task(self, eui: str) -> Any:
        if eui not in self.tasks:
            dev = self.hub.state.devices.get(eui)
            name = f"{eui} {dev.record.board if dev else ''}"
            self.tasks[eui] = self.progress.add_task(name, total=None, status="")
        return self.tasks[eui]

    def on_event(self, ev: dict[str, Any]) -> None:
        kind, eui = ev["kind"], ev.get("device")
        if kind == "progress" and eui:
            frag = (
                f"fragment {ev['fragment'] + 1}/{ev['fragment_count']}"
                if ev["fragment"] is not None
                else ev["state"]
            )
            self.progress.update(self._task(eui), total=ev["total_bytes"], completed=ev["bytes"],
                                 status=frag)  # fmt: skip
        elif kind in ("transfer-complete", "transfer-failed", "discard", "activation-result"):
            self.progress.update(self._task(eui), status=kind.replace("transfer-", ""))
        elif kind == "alert-raised":
            self.console.log(describe(ev, self.hub))


class LineView:
    """One stderr line per notable event (no terminal needed)."""

    def __init__(self, hub: Hub, stream: TextIO | None = None):
        self.hub, self.stream = hub, stream or sys.stderr
        self._unsub: Any = None

    def start(self) -> None:
        self._unsub = self.hub.subscribe(self.on_event)

    def stop(self) -> None:
        if self._unsub:
            self._unsub()

    def on_event(self, ev: dict[str, Any]) -> None:
        if ev["kind"] in _LINE_KINDS:
            self.stream.write(f"hub: {describe(ev, self.hub)}\n")
            self.stream.flush()


def describe(ev: dict[str, Any], hub: Hub) -> str:
    """A one-line human description of an event."""
    kind = ev["kind"]
    if kind == "alert-raised":
        a = next((x for x in reversed(hub.state.alerts_raised) if x.id == ev["id"]), None)
        if a is not None:
            return format_alert(a.to_json())
    skip = ("seq", "t", "kind", "files", "stats", "config")
    rest = " ".join(f"{k}={_ver(v) if k == 'version' else _fmt(v)}" for k, v in ev.items()
                    if k not in skip)  # fmt: skip
    return f"{kind} {rest}"


def format_alert(a: dict[str, Any]) -> str:
    extra = " ".join(f"{k}={_fmt(a[k])}" for k in ("result", "counter", "status", "reason_code",
                     "reason", "matches", "missing", "image", "delta_base_version",
                     "image_bytes") if a.get(k) is not None)  # fmt: skip
    ver = f" version={_fmt(a['version'])}" if a.get("version") is not None else ""
    return f"alert {a['kind']} -> {a['supplier']} device={a['device']}{ver} {extra}".rstrip()


def _fmt(v: Any) -> str:
    if isinstance(v, int) and not isinstance(v, bool) and v > 0xFFFF:
        return f"0x{v:08x}"
    return str(v)


def _ver(v: Any) -> str:
    """A version as shown: "unknown" when the device cannot tell (0xFFFFFFFF) or has not
    said (None), never as a number."""
    return "unknown" if v is None or v == UNKNOWN_VERSION else f"0x{v:08x}"


def make_view(hub: Hub, quiet: bool = False, stream: TextIO | None = None) -> Any:
    """A ProgressView on a terminal, LineView otherwise, None when quiet."""
    if quiet:
        return None
    out = stream or sys.stderr
    return ProgressView(hub, out) if out.isatty() else LineView(hub, out)


def inventory_lines(inv: dict[str, Any]) -> list[str]:
    """`hanota hub inventory` as text: one block per device."""
    lines = []
    for d in inv["devices"]:
        ev = d["version_evidence"]
        signed = f"signed alert #{ev['counter']}, {ev['result']}" if ev else "no signed alert yet"
        link = "connected" if d["connected"] else "not connected"
        lines.append(f"{d['eui64']} {d['board']} version {_ver(d['version'])} ({signed}), "
                     f"{link}, suppliers {', '.join(d['suppliers'])}")  # fmt: skip
        ann = d["announced"]
        if ann:
            lines.append(f"  announced (unauthenticated): version {_ver(ann['version'])}, "
                         f"boot {ann['boot_status']}, via {ann['source']}")  # fmt: skip
        gaps = d["alert_counters"]["missing"]
        if gaps:
            lines.append("  alert counters never received: "
                         + ", ".join(f"{lo}" if lo == hi else f"{lo}-{hi}" for lo, hi in gaps))  # fmt: skip
        t = d["in_progress"]
        if t:
            lines.append(f"  in progress: {t['submission']} from {t['supplier']} version "
                         f"0x{t['version']:08x} {t['state']}{_image(t)} {t['bytes']}/"
                         f"{t['total_bytes']} B, fragments held {t['fragments_held']} of "
                         f"{t['fragment_count']}")  # fmt: skip
        if d["queued"]:
            lines.append(f"  queued (R2): {', '.join(d['queued'])}")
        for h in d["history"]:
            lines.append(f"  history: {h['submission']} {h['supplier']} 0x{h['version']:08x} "
                         f"{h['outcome']}{_image(h)}"
                         f"{' (' + h['reason'] + ')' if h.get('reason') else ''}")  # fmt: skip
    return lines or ["no device enrolled"]


def _image(t: dict[str, Any]) -> str:
    """ " as a delta from 0x01000000" / " as the full image" (and the deltas it refused)."""
    if t.get("image") == "delta":
        out = f" as a delta from {_ver(t['delta_base_version'])}"
    elif t.get("image") == "full":
        out = " as the full image"
    else:
        return ""
    refused = t.get("deltas_refused") or []
    return out + (f" (refused the delta from {', '.join(map(_ver, refused))})" if refused else "")
