"""Alert latency from due activation: the device's signed activation alert and the hub's
version confirmation, on a sim board through the rig (R3)."""

from __future__ import annotations

import asyncio
import tempfile
from datetime import datetime
from pathlib import Path
from statistics import median

from ..output import log
from ..rig.factory import Images
from ..rig.update import UpdateOptions, run_update
from . import simrun
from .results import Figure, Section

BOARD, V1, V2 = simrun.BOARD, simrun.V1, simrun.V2
LEAD_S = 8  # activation this far after submission: the transfer ends well before it
CONFIRM_DELAY_S = 2.0  # the rig's default version-confirmation delay


def _t(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _one(tmp: Path, i: int) -> dict[str, float]:
    imgs = Images(tmp / "keys")
    app = simrun.app(tmp, V2, pad_to=100_000)
    files = imgs.build(V2, board=BOARD, payload=app, name="app")
    opts = UpdateOptions(images=files, trust=[imgs.pub_path], board=BOARD, factory_version=V1,
                         suppliers=["supplier-a", "supplier-b"], activate_at=f"+{LEAD_S}",
                         confirm_delay_s=CONFIRM_DELAY_S, timeout_s=120,
                         workdir=tmp / f"run{i}", heap_report=False)  # fmt: skip
    res = asyncio.run(run_update(opts))
    if res["activation"] != "success" or not res.get("activation_due"):
        raise RuntimeError(f"alert latency run {i}: activation {res['activation']}")
    due = _t(res["activation_due"])
    out: dict[str, float] = {}
    for a in res["alerts"]:
        if a["kind"] in ("activation", "version-confirmation") and a.get("at"):
            key = f"{a['kind']}:{a['supplier']}"
            out[key] = _t(a["at"]) - due
    return out


def measure(quick: bool = False) -> Section:
    runs = 1 if quick else 3
    s = Section("alerts", "Alert latency from due activation (R3)")
    lat: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="hanota-bench-alerts-") as tmp:
        for i in range(runs):
            log(f"bench: alerts: run {i + 1}/{runs}")
            for k, v in _one(Path(tmp), i).items():
                lat.setdefault(k, []).append(v)
    rows = []
    for kind in ("activation", "version-confirmation"):
        vals = [v for k, vs in lat.items() if k.startswith(kind + ":") for v in vs]
        if not vals:
            continue
        s.add(Figure(f"{kind}_median_s", f"{kind} alert: due activation → raised at the hub, "
                     "median over suppliers and runs", median(vals), "s"))  # fmt: skip
        rows.append([kind, str(len(vals)), f"{min(vals):.2f}", f"{median(vals):.2f}",
                     f"{max(vals):.2f}"])  # fmt: skip
    s.data = {k: [round(v, 3) for v in vs] for k, vs in lat.items()}
    s.method = (
        f"`hanota rig update` (Python API) on a fresh `{BOARD}` board serving two suppliers: a "
        f"100 kB app submitted with activation at +{LEAD_S} s (the transfer ends first), "
        f"`direct` link, hub version-confirmation delay {CONFIRM_DELAY_S} s, stagger as the "
        "rig sets it. Latency = the alert's `at` at the hub minus the due activation time the "
        "hub gave (whole ZigBee seconds). The activation alert covers: the device's reset at "
        "the due time, bootloader, trial boot, self-test and confirm, signing with the "
        "device key and sending, and the hub checking the signature; the version "
        "confirmation is the configured delay plus the stagger (the version is read from "
        f"the device's latest report). {runs} run(s)."
    )
    s.tables.append((["alert", "samples", "min s", "median s", "max s"], rows))
    return s
