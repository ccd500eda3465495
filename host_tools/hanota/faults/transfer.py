"""One transfer of the campaign: a fresh sim board (factory app, real MicroPython agent),
the hub in process, the fault class on the line or the hub, the image submitted; run to
the end. If it has not ended when the fault window closes, the line is healed (faults
off, a unicast Image Notify) and the update must resume. Then the bytes are read back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hanota.board import defs
from hanota.hub import HubConfig
from hanota.link.faults import Faults
from hanota.rig import simboards
from hanota.sim import appimage
from hanota.sim.runner import SimBoard

from . import readback
from .rig import CampaignRig
from .scenarios import Scenario

FINAL = ("failed", "discarded", "closed")
SUPPLIER = "supplier-a"


@dataclass
class Plan:
    """What every transfer of a campaign shares."""

    files: list[Path]  # the signed OTA files (fragments)
    firmware: bytes  # what they carry: the app image the board must end up running
    target: int  # its version
    trust: Path  # the manufacturer public key (PEM)
    board: str = "sim-ppmid"
    factory_version: int = 0x01000000
    profile: str = "uart-921600"
    fault_s: float = 120.0  # faults stay on this long at most
    resume_s: float = 120.0  # after healing, the update must end within this

    @property
    def ota_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.files)


async def run(plan: Plan, sc: Scenario, seed: int, work: Path) -> dict[str, Any]:
    bdef = defs.load(plan.board)
    bdir = work / "board"
    _ident, record = await asyncio.to_thread(
        simboards.fresh, bdir, plan.board, factory_version=plan.factory_version,
        trust=[plan.trust], suppliers=[SUPPLIER], seed=f"faults:{sc.name}:{seed}:{work}",
    )  # fmt: skip
    if sc.agent_config:
        files = {"agent_config.json": json.dumps(sc.agent_config).encode()}
        await asyncio.to_thread(simboards.write_store, bdir, bdef, files)
    factory = readback.slot(
        bdir, bdef, 0, appimage.parse_header(readback.slot(bdir, bdef, 0, 64)).total
    )
    pulls = tuple((int(at * plan.ota_bytes), s) for at, s in sc.pulls)
    faults = Faults(seed=seed, cable_pulls=pulls, **sc.faults)
    cfg = HubConfig(confirm_delay_s=1.0, confirm_wait_s=60.0, **sc.hub)
    eui, out = record["eui64"], {"class": sc.name, "seed": seed}
    async with CampaignRig(work / "hub", cfg, plan.profile) as rig:
        sim = SimBoard(bdir).start()
        b = await rig.add_sim(sim, record, faults, name="board")
        await rig.wait(lambda: rig.reported(eui), 60, "the board's DEVICE_ANNOUNCE")
        t0 = time.monotonic()
        sub = rig.hub.submit(SUPPLIER, [eui], plan.files)
        key = (sub["id"], eui)

        def ended() -> bool:
            t = rig.hub.state.transfers.get(key)
            return t is not None and t.state in FINAL and not rig.hub.state.alerts_pending

        action = asyncio.create_task(_action(rig, sc, plan, b.name, eui))
        healed = False
        try:
            await rig.wait(ended, plan.fault_s, "the update under faults")
        except TimeoutError:
            healed = True
        finally:
            action.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await action
        if healed:  # faults off, storm over, the CH offers the image again
            if rig.hub.meter_running(eui):
                rig.hub.meter_upgrade(eui, on=False)
            await rig.relink(b.name, None)
            rig.hub.ota.notify(eui)
            with contextlib.suppress(TimeoutError):
                await rig.wait(ended, plan.resume_s, "the update after healing")
        t = rig.hub.state.transfers[key]
        out.update(
            state=t.state, result=t.result, healed=healed,
            seconds=round(time.monotonic() - t0, 1),
            before=plan.factory_version, reported=rig.reported(eui),
            running=sim.running_version, running_slot=sim.running_slot,
            abandoned=sim.console_text().count("transfer abandoned"),
            hub_restarts=rig.restarts, wait_for_data=rig.wait_for_data,
            downstream_bytes=rig.downstream(b.name), faults=rig.fault_counts(),
            boots=sim.boot_count,
        )  # fmt: skip
    # the boards are stopped: read the flash file back
    out.update(_bytes(plan, bdir, bdef, out, factory))
    return out


async def _action(rig: CampaignRig, sc: Scenario, plan: Plan, name: str, eui: str) -> None:
    """What the scenario does besides line faults, each time its share of bytes is sent."""
    for at in sc.at:
        await rig.wait(lambda at=at: rig.downstream(name) >= at * plan.ota_bytes, plan.fault_s,
                       f"{at:.0%} of the OTA bytes", poll=0.02)  # fmt: skip
        if sc.action == "hub-restart":
            await rig.restart_hub(sc.hold_s, rig.boards[name].emulator.faults)
        elif sc.action == "wfd-storm":
            rig.hub.meter_upgrade(eui, on=True)
            try:
                await asyncio.sleep(sc.hold_s)
            finally:
                rig.hub.meter_upgrade(eui, on=False)


def _bytes(plan: Plan, bdir: Path, bdef: dict[str, Any], out: dict[str, Any],
           factory: bytes) -> dict[str, Any]:  # fmt: skip
    """Completed: the running slot against the firmware. Otherwise: the old app intact and
    every staged fragment right."""
    slot = out["running_slot"]
    if out["running"] == plan.target:
        got = readback.slot(bdir, bdef, slot, len(plan.firmware))
        wrong = readback.diff(got, plan.firmware)
        done = (out["state"], out["result"], out["reported"]) == ("closed", "success", plan.target)
        return {"completed": done and wrong == 0, "bytes_checked": len(plan.firmware),
                "bytes_wrong": wrong, "staged_fragments": None}  # fmt: skip
    wrong = readback.diff(readback.slot(bdir, bdef, slot, len(factory)), factory)
    n, checked, bad = readback.staged(bdir, bdef, 1 - slot, plan.firmware)
    return {"completed": False, "bytes_checked": len(factory) + checked,
            "bytes_wrong": wrong + bad, "staged_fragments": n}  # fmt: skip
