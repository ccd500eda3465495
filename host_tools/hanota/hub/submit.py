"""Which devices a submission goes to, waits for or is refused for, and why (R1, R2, CCS08 2).

Pure decision over the hub state; core.Hub.submit records and alerts the outcome.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from otaclient.policy import KEYS_IMAGE_TYPE

from .state import OPEN, WAITING, HubState
from .store import ImageFile, SubmissionError


@dataclass
class Plan:
    accepted: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # eui64 -> reason
    hw_mismatch: set[str] = field(default_factory=set)
    conflicts: dict[str, str] = field(default_factory=dict)  # eui64 -> supplier pending
    replaces: list[tuple[str, str]] = field(default_factory=list)  # (submission, eui64)
    queued: list[str] = field(default_factory=list)  # behind another supplier's image (R2)
    why_queued: dict[str, str] = field(default_factory=dict)


def plan_submission(
    state: HubState,
    supplier: str,
    devices: list[str],
    files: list[ImageFile],
    queue: bool = False,
) -> Plan:
    """SubmissionError for a request that is wrong as a whole; per-device refusals in Plan.
    `queue`: wait behind another supplier's image rather than be refused (R2)."""
    if not devices:
        raise SubmissionError("no device given")
    img = files[0]
    plan = Plan()
    for raw in devices:
        eui = raw.lower()
        dev = state.devices.get(eui)
        if dev is None:
            raise SubmissionError(f"unknown device {raw} (enrol its record first)")
        rec = dev.record
        if supplier not in rec.suppliers:
            raise SubmissionError(f"{supplier} does not serve device {eui} ({rec.suppliers})")
        if rec.manufacturer_code is not None and rec.manufacturer_code != img.mfr:
            raise SubmissionError(
                f"image manufacturer {img.mfr:#06x} is not device {eui}'s "
                f"({rec.manufacturer_code:#06x})"
            )
        # a key-rotation image (0xFFC0) is for every image type of the manufacturer
        if rec.image_type not in (None, img.image_type) and img.image_type != KEYS_IMAGE_TYPE:
            raise SubmissionError(
                f"image type {img.image_type:#06x} is not for device {eui} "
                f"({rec.board}, image type {rec.image_type:#06x})"
            )
        _plan_device(state, plan, supplier, eui, img, queue)
    return plan


def _plan_device(state: HubState, plan: Plan, supplier: str, eui: str, img: ImageFile,
                 queue: bool) -> None:  # fmt: skip
    dev = state.devices[eui]
    hw = dev.hw_version
    if hw is not None and not img.hw_min <= hw <= img.hw_max:
        plan.refused[eui] = (
            f"hardware version {hw:#06x} outside the image's {img.hw_min:#06x}..{img.hw_max:#06x}"
        )
        plan.hw_mismatch.add(eui)
        return
    t = state.active(eui)
    if t is None:
        plan.accepted.append(eui)
        return
    other = t.submission.supplier
    if other == supplier and t.state in OPEN:
        plan.replaces.append((t.submission.id, eui))  # R5: own image not yet fetched
        plan.accepted.append(eui)
    elif other == supplier:
        plan.refused[eui] = f"your image {t.submission.id} is {t.state} on this device"
    elif queue:
        mine = [sid for sid in dev.queue if state.submissions[sid].supplier == supplier]
        plan.replaces += [(sid, eui) for sid in mine]  # one place in the queue per supplier
        ahead = [t.submission.id] + [sid for sid in dev.queue if sid not in mine]
        plan.queued.append(eui)
        plan.why_queued[eui] = (f"behind {', '.join(ahead)} (R2: no supplier overrides "
                                "another; each has the device for turn_s at most)")  # fmt: skip
        plan.conflicts[eui] = other
    else:
        what = "awaiting activation" if t.state in WAITING else t.state
        plan.refused[eui] = (
            f"device has {other}'s image {t.submission.id} ({what}); R2: no supplier "
            "overrides another: submit with --queue to wait for it, or again once it is done"
        )
        plan.conflicts[eui] = other
