"""`hanota rig update` as a function: a fresh provisioned board (a local sim, a local
real one, or a labgrid place's), the hub, the images submitted, run to the end, one
summary dict with the issue's JSON keys.

Orchestration only (session.RigHub wires, the hub decides, the board updates itself); the
flow holds a rig.boards.RigBoard and never asks which kind.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hanota.hub import HubConfig, HubError
from hanota.link.faults import Faults

from ..output import log
from . import console, heap, simboards
from .boards import LocalReal, LocalSim, RigBoard
from .session import BoardLink, RigHub

FINAL = ("failed", "discarded", "closed")


@dataclass
class UpdateOptions:
    images: list[Path]
    trust: list[Path]
    board: str = "sim-ppmid"
    factory_version: int = 0x01000000
    factory_app: Path | None = None  # sim: exactly these app bytes in ota_0 (else built here)
    link: str = "direct"
    heap: str | None = None
    cut_at: int | None = None
    faults: Faults | None = None
    suppliers: list[str] = field(default_factory=lambda: ["supplier-a"])
    activate_at: str | None = None
    confirm_delay_s: float = 2.0
    timeout_s: float = 240.0
    block_size: int = 254  # the hub's largest Image Block Response data
    stall_timeout_s: float = 120.0  # the hub's stall rule (transfer-failure, reason code 3)
    workdir: Path | None = None
    port: str | None = None  # real board: its HAN UART (--hub-port) ...
    record: Path | None = None  # ... and its provisioning record
    baud: int = 115200
    seed: str = "rig"
    console: str | None = None  # real board: its console (--port), read for the heap report
    console_baud: int = 115200
    heap_report: bool = True  # sim boards get agent_config.json {"heap_report": true}
    on_board: Any = None  # called with the BoardLink once the board is linked (sweep hook)
    start_from: Path | None = None  # sim: copy this board directory (flash, store, record)


async def run_update(opts: UpdateOptions, view: Any = None) -> dict[str, Any]:
    """Run one update of the board `opts` names to its end; the summary (ok, versions,
    activation, alerts, ...)."""
    work = Path(opts.workdir or tempfile.mkdtemp(prefix="hanota-rig-"))
    return (await run_updates(opts, [_board(opts, work)], view, work))[0]


async def run_updates(opts: UpdateOptions, boards: list[RigBoard], view: Any = None,
                      work: Path | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """Update `boards` at once through one hub, each its own submission of the images;
    one summary per board, in order."""
    work = Path(work or opts.workdir or tempfile.mkdtemp(prefix="hanota-rig-"))
    cfg = HubConfig(confirm_delay_s=opts.confirm_delay_s, confirm_wait_s=opts.timeout_s,
                    block_size=opts.block_size, stall_timeout_s=opts.stall_timeout_s)  # fmt: skip
    async with RigHub(work / "hub", cfg, opts.link) as rig:
        if view is not None:
            view(rig.hub)
        links = [await rig.add(board, opts.faults) for board in boards]
        for b in links:
            if opts.on_board is not None:
                opts.on_board(b)
        summaries = await asyncio.gather(*(_drive(rig, b, opts) for b in links))
        for b in links:
            console.log_crashes(b.board.console_output())
        return list(summaries)


def _board(opts: UpdateOptions, work: Path) -> RigBoard:
    """The board `opts` names on this machine: a real one (--hub-port and its record; its
    console read while it updates when given), or a fresh provisioned sim board."""
    if opts.port:
        import json

        if opts.record is None:
            raise HubError("a real board needs --record (from 'hanota board provision')")
        record = json.loads(opts.record.read_text())
        if opts.console:
            log(f"rig: reading the board's console {opts.console} (heap report)")
        return LocalReal(opts.port, record, opts.baud, opts.console, opts.console_baud)
    from hanota.sim.runner import SimBoard

    if opts.start_from is not None:  # a board an earlier run left (e.g. after one update)
        record = simboards.copy(opts.start_from, work / "board")
    else:
        _ident, record = simboards.fresh(
            work / "board", opts.board, factory_version=opts.factory_version, trust=opts.trust,
            suppliers=opts.suppliers, seed=f"{opts.seed}:{work}", app=factory_app(opts),
            agent_config=heap.with_report(None) if opts.heap_report else None,
        )  # fmt: skip
    sim = SimBoard(work / "board", heap=opts.heap, cut_at=opts.cut_at).start()
    return LocalSim(sim, record)


def factory_app(opts: UpdateOptions) -> bytes | None:
    """The --factory-app bytes, checked to be a whole sim app (header and tree hash)."""
    if opts.factory_app is None:
        return None
    from hanota.sim import appimage

    try:
        raw = Path(opts.factory_app).read_bytes()
        appimage.verify(raw)
    except OSError as exc:
        raise HubError(f"--factory-app {opts.factory_app}: {exc.strerror}") from None
    except appimage.AppError as exc:
        raise HubError(f"--factory-app {opts.factory_app}: not a sim app: {exc}") from None
    return raw


async def _drive(rig: RigHub, b: BoardLink, opts: UpdateOptions) -> dict[str, Any]:
    hub, eui = rig.hub, b.eui
    await rig.wait(lambda: rig.heard(eui), 60, "the board's DEVICE_ANNOUNCE")
    before = rig.reported(eui)
    out: dict[str, Any] = {"before_version": before, "rejected": None}
    try:
        sub = hub.submit(opts.suppliers[0], [eui], opts.images, opts.activate_at)
    except HubError as exc:
        out["rejected"] = str(exc)
        return _summary(rig, b, None, out, ok=True)
    key = (sub["id"], eui)
    end = time.monotonic() + opts.timeout_s
    await rig.wait(lambda: hub.state.transfers[key].state in FINAL and
                   not hub.state.alerts_pending, opts.timeout_s, "the update to end")  # fmt: skip
    t = hub.state.transfers[key]
    if t.result is not None:  # the device's own alerts follow its activation report
        want = len(b.record["suppliers"])
        left = max(1.0, min(40.0, end - time.monotonic()))  # one alert re-send (15 s) fits
        await rig.wait(lambda: len(_kind(hub, eui, "activation")) >= want or None, left,
                       "activation alerts")  # fmt: skip
    await b.board.settle()
    if t.state == "failed":
        out["rejected"] = hub.state.devices[eui].history[-1].get("reason", "transfer failed")
    elif t.state == "discarded":
        out["rejected"] = "discarded"
    return _summary(rig, b, t, out, ok=True)


def _kind(hub: Any, eui: str, kind: str) -> list[dict[str, Any]]:
    return [a for a in hub.alerts() if a["device"] == eui and a["kind"] == kind]


def _summary(rig: RigHub, b: BoardLink, t: Any, out: dict[str, Any], ok: bool) -> dict[str, Any]:
    hub, eui = rig.hub, b.eui
    acts = _kind(hub, eui, "activation")
    activation = acts[-1]["result"] if acts else "none"
    activation = activation if activation in ("success", "failure", "refused") else "none"
    reported = rig.reported(eui)
    running = b.board.running_version(reported)
    target = t.submission.version if t is not None else None
    expect = target if activation == "success" else out["before_version"]
    checks = {
        "reported_matches_running": reported == running,
        "running_as_expected": running == expect,
        "alerts_settled": not hub.state.alerts_pending,
    }
    return {
        "ok": ok and all(checks.values()),
        "before_version": out["before_version"],
        "reported_version": reported,
        "running_version": running,
        "target_version": target,
        "activation": activation,
        "rejected": out["rejected"],
        "alerts": [
            {
                k: a.get(k)
                for k in (
                    "supplier",
                    "kind",
                    "version",
                    "at",
                    "device",
                    "result",
                    "reason_code",
                    "reason",
                    "matches",
                    "image",
                )
            }
            for a in hub.alerts()
            if a["device"] == eui
        ],  # fmt: skip
        "image_bytes": t.sent if t is not None else 0,
        **_delivered(t),
        "link_bytes": b.link_bytes(),
        "transfer_seconds": _seconds(t),
        "activation_due": _due(t),
        **_heap(b),
        "checks": checks,
        "link_profile": rig.profile.name,
        **b.board.facts(),
    }


def _delivered(t: Any) -> dict[str, Any]:
    """delta: the hub served the board a delta (and it was not refused); firmware_bytes:
    the length of the target firmware (null when nothing was submitted)."""
    if t is None:
        return {"delta": False, "firmware_bytes": None}
    got = t.image()
    return {"delta": got["image"] == "delta", "firmware_bytes": got["firmware_bytes"]}


def _due(t: Any) -> str | None:
    """The due activation time the hub gave (ISO-8601 UTC), None if none or held back."""
    from ..hub.alerts import iso
    from ..hub.clock import HOLD, ZB_EPOCH

    up = getattr(t, "upgrade_time", None) if t is not None else None
    return None if up is None or up == HOLD else iso(up + ZB_EPOCH)


def _seconds(t: Any) -> float:
    if t is None or t.first_block is None or t.last_block is None:
        return 0.0
    return round(t.last_block - t.first_block, 3)


def _heap(b: BoardLink) -> dict[str, Any]:
    """peak_heap (bytes above idle, QUALITY.md) and idle_heap from the agent's heap report."""
    text = b.board.console_output()
    rep = heap.parse(text or b"")
    if rep.peak_heap is None:
        why = rep.note() if text is not None else "the board's console was not read (--port)"
        log(f"rig: peak_heap is null: {why}")
    return {"peak_heap": rep.peak_heap, "idle_heap": rep.idle_heap}
