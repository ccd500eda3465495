"""One sweep run, in a worker process: `hanota rig update` (rig.update.run_update) on a
fresh sim board with power cut at the planned flash operations, then the facts the
invariants are checked on, read from the board (runner events, flash) and the hub.

The first cut is `cut_at`; each later one is armed as soon as the runner reports the
previous `power_cut` (before the next boot starts), so a plan of absolute op numbers
replays exactly. `cycles` are power cuts between operations (`SimBoard.power_cycle`),
each at the next hub event of the listed kinds (e.g. the announce, the first block served).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from hanota.rig.update import UpdateOptions, run_update
from hanota.sim import appimage, bootloader

from . import invariants

BAD_EVENTS = ("bad_app", "no_bootable_app", "runner_error")
_MARKS = ("fragment-held", "transfer-complete")


class _Probe:
    """Live hooks on the hub and the board: op counts at milestones, later cuts, cycles."""

    def __init__(self, case: dict[str, Any]):
        self.case = case
        self.hub: Any = None
        self.link: Any = None
        self.old: dict[str, Any] = {}
        self.marks: list[tuple[str, int]] = []  # (milestone, ops when it happened)
        self.done = threading.Event()
        self.cycled = 0

    def view(self, hub: Any) -> None:
        self.hub = hub
        hub.subscribe(self._on_event)

    def _on_event(self, ev: dict[str, Any]) -> None:
        triggers = self.case.get("cycles") or []
        if self.cycled < len(triggers) and ev["kind"] == triggers[self.cycled] and self.link:
            self.cycled += 1  # on the hub's loop: the board dies right at this event
            self.link.board.power_cycle()
        if self.case.get("probe") and ev["kind"] in _MARKS and self.link is not None:
            self.marks.append((ev["kind"], self.link.board.sim.ops))

    def on_board(self, link: Any) -> None:
        self.link = link
        sim = link.board.sim
        try:  # the app this run started with (the "old" image): what a power-on boots now
            d = bootloader.decide(sim.flash, write=False)
            head, _ = bootloader.read_app(sim.flash, d.slot)
            self.old = {"version": head.version, "sha": head.sha256.hex(), "slot": d.slot,
                        "slot_sha": slot_sha(sim.flash, d.slot)}  # fmt: skip
        except (appimage.AppError, bootloader.NoBootableApp) as exc:
            self.old = {"error": str(exc)}
        if self.case.get("watchdog_ms"):
            sim.watchdog_ms = self.case["watchdog_ms"]
        for target in (self._later_cuts, self._board_marks):
            threading.Thread(target=target, args=(sim,), daemon=True).start()

    def _later_cuts(self, sim: Any) -> None:
        after = 0
        for n in self.case["cuts"][1:]:
            ev = self._wait(sim, "power_cut", after)
            if ev is None:
                return
            after = sim.events.index(ev) + 1
            sim.cut_at(n)

    def _board_marks(self, sim: Any) -> None:
        """Reference run: op counts when the agent reset to activate and at the watchdog."""
        if not self.case.get("probe"):
            return
        for name in ("reset", "watchdog"):
            ev = self._wait(sim, name, 0)
            if ev is None:
                return
            self.marks.append((name, sim.ops))

    def _wait(self, sim: Any, event: str, after: int) -> dict[str, Any] | None:
        try:
            return sim.wait_for(event, timeout=self.case["timeout"], after=after)
        except TimeoutError:
            return None


def run_case(case: dict[str, Any]) -> dict[str, Any]:
    """Run one case; the facts, the checks and whether it survived (a JSON-able dict)."""
    work = Path(case["workdir"])
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    probe = _Probe(case)
    cuts = case["cuts"]
    opts = UpdateOptions(
        images=[Path(f) for f in case["files"]], trust=[Path(t) for t in case["trust"]],
        cut_at=cuts[0] if cuts else None, timeout_s=case["timeout"], workdir=work,
        on_board=probe.on_board, seed=f"sweep:{case['id']}", heap_report=False,
        heap=case.get("heap"),
        start_from=Path(case["start_from"]) if case.get("start_from") else None,
        factory_app=Path(case["factory_app"]) if case.get("factory_app") else None,
    )  # fmt: skip
    started = time.monotonic()
    summary, error = None, None
    rig_log = io.StringIO()
    try:
        with contextlib.redirect_stderr(rig_log):  # the rig's notes, kept with the facts
            summary = asyncio.run(run_update(opts, view=probe.view))
    except TimeoutError as exc:  # the hub did not settle: the checks tell whether that is ok
        error = str(exc)
    except Exception as exc:  # noqa: BLE001 (the run broke: reported, not raised)
        error = f"{type(exc).__name__}: {exc}"
    finally:
        probe.done.set()
    facts = collect(probe, summary, error)
    facts["seconds"] = round(time.monotonic() - started, 2)
    facts["rig_log"] = rig_log.getvalue().splitlines()[-5:]
    checks = invariants.check(facts, case["expect"])
    out = {
        "id": case["id"],
        "update": case["update"],
        "cuts": cuts,
        "cycles": case.get("cycles") or [],
        "phase": case.get("phase"),
        "outcome": invariants.outcome(facts),
        "survived": all(v is None for v in checks.values()),
        "failed": {k: v for k, v in checks.items() if v is not None},
        "facts": facts,
        "marks": probe.marks,
        "workdir": str(work),
    }
    if out["survived"] and not case.get("keep"):
        shutil.rmtree(work, ignore_errors=True)
    return out


def collect(probe: _Probe, summary: dict[str, Any] | None, error: str | None) -> dict[str, Any]:
    """What the invariants look at: runner events, the flash after the run, the hub's view."""
    f: dict[str, Any] = {"error": error, "old": probe.old, "timed_out": error is not None}
    link = probe.link
    if link is None:
        f["error"] = error or "the board never came up"
        return f
    sim = link.board.sim  # a sweep cuts a LocalSim's power: its runner holds the facts
    events = sim.events
    f["boots"] = [{"slot": e["slot"], "version": e["version"], "trial": e["pending_verify"]}
                  for e in events if e["event"] == "boot"]  # fmt: skip
    f["bad_events"] = [e for e in events if e["event"] in BAD_EVENTS]
    f["events"] = [e["event"] for e in events]
    f["halted"] = sim.halted
    f["power_cuts"] = sum(e["event"] == "power_cut" for e in events)
    f["power_cycles"] = sum(e["event"] == "power_cycle" for e in events)
    f["ops"] = sim.ops
    crashes = [ln for ln in _console(sim).splitlines() if ln.startswith("agent: crashed")]
    f["agent_crashes"] = len(crashes)
    f["first_crash"] = crashes[0] if crashes else None
    f["running"] = {"slot": sim.running_slot, "version": sim.running_version}
    if "slot" in probe.old:  # the old app's whole partition now (never written: A/B)
        f["old_slot_sha"] = slot_sha(sim.flash, probe.old["slot"])
    f["running_app"] = _app(sim.flash, sim.running_slot)
    try:  # what a power-on now would boot (no otadata write)
        d = bootloader.decide(sim.flash, write=False)
        f["next_boot"] = {"slot": d.slot, "version": d.version, "trial": d.pending_verify}
    except bootloader.NoBootableApp as exc:
        f["next_boot"] = {"error": str(exc)}
    f.update(_hub_facts(probe.hub, link.eui, summary))
    return f


def slot_sha(flash: Any, slot: int) -> str:
    """SHA-256 of the whole ota_<slot> partition (the running app's: an update writes the
    other slot only, so a delta's base is always there)."""
    import hashlib

    off, size = flash.part(f"ota_{slot}")
    return hashlib.sha256(flash.read(off, size)).hexdigest()


def _console(sim: Any) -> str:
    try:
        return sim.console_text()
    except OSError:  # no console written (the board never ran)
        return ""


def _app(flash: Any, slot: int | None) -> dict[str, Any]:
    if slot is None:
        return {"error": "nothing runs"}
    try:
        head, _ = bootloader.read_app(flash, slot)
    except appimage.AppError as exc:
        return {"error": str(exc)}
    return {"version": head.version, "sha": head.sha256.hex()}


def _hub_facts(hub: Any, eui: str, summary: dict[str, Any] | None) -> dict[str, Any]:
    if hub is None:
        return {"reported": None, "transfer": None, "sent": 0, "activation": "none"}
    dev = hub.state.devices.get(eui)
    ts = [t for t in hub.state.transfers.values() if t.device == eui]
    t = ts[-1] if ts else None
    acts = [a for a in hub.alerts() if a["device"] == eui and a["kind"] == "activation"]
    return {
        "reported": dev.announced_version if dev is not None else None,
        "transfer": t.state if t is not None else None,
        "sent": t.sent if t is not None else 0,
        "activation": acts[-1]["result"] if acts else "none",
        "rejected": summary["rejected"] if summary else None,
        "alerts_pending": len(hub.state.alerts_pending),
        "rig_checks": summary["checks"] if summary else None,
    }
