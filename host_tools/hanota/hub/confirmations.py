"""Version confirmations (R3): when they fall due, when one is held back, what it carries
when raised, and which transfer its going out closes.

Rules read from the state only: they schedule, record and send nothing (core.Hub does,
as the alert loop raises alerts; serving.OtaService schedules them at activation). The
Alert record, stagger and signature checks are alerts.py's.
"""

from __future__ import annotations

import time
from typing import Any

from .alerts import Alert
from .clock import ZB_EPOCH
from .inventory import known
from .state import WAITING, HubState, Transfer

KIND = "version-confirmation"


def base_due(t: Transfer, delay_s: float) -> float:
    """When a transfer's confirmations fall due before stagger: `delay_s` after its
    activation time. Upgrade times are whole seconds: "now" must not put it in the past."""
    return max(time.time(), (t.upgrade_time or 0) + ZB_EPOCH) + delay_s


def held_back(state: HubState, a: Alert, now: float, wait_s: float) -> bool:
    """Hold a version confirmation while the device has not reported its activation
    outcome yet (trial boot, rollback in progress), at most `wait_s` past its due time."""
    if a.kind != KIND or now > a.due + wait_s:
        return False
    t = state.transfers.get((a.fields.get("submission"), a.device))
    return t is not None and t.state == "complete"


def raised_fields(state: HubState, a: Alert) -> dict[str, Any]:
    """Filled in when a version confirmation is raised: the running version the
    device's signed alerts vouch for, and whether a signed success of this
    submission's version came (an announce never confirms anything). Other kinds: none."""
    if a.kind != KIND:
        return {}
    dev = state.devices.get(a.device)
    t = state.transfers.get((a.fields.get("submission"), a.device))
    version = known(dev.version) if dev is not None else None
    expected = a.fields.get("expected")
    signed = t is not None and t.result == "success"
    claimed = (dev.claimed or {}).get("version") if dev is not None else None
    return {"version": version, "fields": {
        "matches": signed and version == expected,
        "evidence": dict(dev.evidence) if dev is not None and dev.evidence else None,
        "announced_version": known(claimed)}}  # fmt: skip


def closes(state: HubState, a: Alert) -> Transfer | None:
    """The transfer to close now that `a` went out: its last version confirmation, while
    the transfer waits for it. None: nothing to close."""
    if a.kind != KIND:
        return None
    sub_id = a.fields.get("submission")
    more = any(p.kind == a.kind and p.device == a.device and
               p.fields.get("submission") == sub_id
               for p in state.alerts_pending.values())  # fmt: skip
    t = state.transfers.get((sub_id, a.device))
    return t if not more and t is not None and t.state in WAITING else None
