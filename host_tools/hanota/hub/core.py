"""The Hub: the in-process Python API over state, store, event log and alerts.

Supplier-facing operations (enrol, trust, submit, discard, activate, meter priority,
queries) and the alert loop live here; what is said on the wire is serving.OtaService's
(which reaches the hub through serving.HubPort only), the rules of version confirmations
are confirmations.py's, the I/O is server.py's, who may call what over the control socket
is control.py's. Nothing of the hub below this module imports it. In process the caller is
trusted with the supplier ids it passes: it owns the state directory.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import alerts as al
from . import confirmations as cf
from . import credentials as cr
from .clock import HOLD, ZB_EPOCH, zb_now
from .events import Event, EventLog, read_events
from .inventory import EnrolError, link_key, parse_record
from .linkkeys import LinkKeys
from .serving import OtaService
from .state import ENDED, OPEN, QUEUED, HubState, Transfer
from .store import ImageStore, SubmissionError
from .submit import plan_submission


class HubError(Exception):
    """A refused request (bad record, refused submission, unknown id): user-facing text."""


@dataclass
class HubConfig:
    # largest Image Block Response data (40 HAN-like .. 254: ZCL reads an octet string of
    # length 0xFF as invalid, and stacks such as zigpy refuse to write one)
    block_size: int = 254
    min_block_period_ms: int = 0  # told to clients in WAIT_FOR_DATA; spaces page blocks
    meter_wait_s: int = 5  # WAIT_FOR_DATA: ask again after this while a meter upgrades
    confirm_delay_s: float = 5.0  # version confirmation this long after due activation
    confirm_wait_s: float = 60.0  # ... held up to this much longer until the device reports
    stagger_s: float = 0.0  # alerts spread by a random 0..stagger_s seconds
    seed: int | None = None
    notify_jitter: int = 100
    short_addr: int = 0x0000  # the hub's own short address (the ZigBee coordinator)
    stall_timeout_s: float = 120.0  # a transfer with no request this long: failure alert (0 off)
    # R2: a submission keeps a device from the suppliers queued behind it this long at most
    # (from its submission to its activation), then it is discarded (0 off)
    turn_s: float = 86400.0
    # verify every submitted file against the trust anchors (fail closed: none, refused).
    # Off only in a test harness whose hub must pass hostile images to a board (rig).
    check_images: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.block_size <= 254:
            raise HubError(f"block size {self.block_size}: want 1..254")
        if self.stall_timeout_s < 0:
            raise HubError(f"stall timeout {self.stall_timeout_s}: want >= 0 (0 = off)")


class Hub:
    """A Comms Hub emulator. With `state_dir`, its event log and images persist there."""

    def __init__(self, config: HubConfig | None = None, state_dir: Path | str | None = None):
        self.config = config or HubConfig()
        self.state_dir = Path(state_dir) if state_dir is not None else None
        sd = self.state_dir
        self.state = HubState()
        if sd is not None:
            for ev in read_events(sd / "events.jsonl"):
                self.state.apply(ev)
        self.log = EventLog(sd / "events.jsonl" if sd is not None else None)
        self.store = ImageStore(sd / "images" if sd is not None else None)
        self.stagger = al.Stagger(self.config.stagger_s, self.config.seed)
        self.ota = OtaService(self)
        self.credentials = cr.Credentials(sd / "credentials" if sd is not None else None)
        self.link_keys = LinkKeys(sd / "credentials" if sd is not None else None)
        self.links: dict[str, Any] = {}  # eui64 -> server.LinkSession while connected
        self._subs: list[Callable[[Event], None]] = []
        self._wake: asyncio.Event | None = None
        self._since = time.time()  # stall timer start for transfers replayed from the log
        self._issue(cr.OPERATOR)

    def _issue(self, principal: str) -> None:
        """A control API token for `principal`, once (the event says so, not the token)."""
        made = self.credentials.issue(principal)
        if made or principal not in self.state.principals:
            path = self.credentials.path(principal)
            self.record("credential-issued", principal=principal,
                        path=str(path) if path is not None else None)  # fmt: skip

    def started(self) -> None:
        """Log that this hub now serves links (previous links are gone)."""
        self._since = time.time()
        self.record("hub-start", config=asdict(self.config))

    # --- events ------------------------------------------------------------------------

    def record(self, kind: str, **fields: Any) -> Event:
        """Append an event, apply it to the state, tell subscribers."""
        ev = self.log.append(kind, **fields)
        self.state.apply(ev)
        self.publish(ev)
        if kind in ("transfer-start", "transfer-resumed"):
            self._kick()  # the alert loop times stalls too: a transfer to watch
        if kind in ("transfer-failed", "discard", "transfer-closed"):
            self._next_turn(ev["device"], ev["submission"])
        return ev

    def _next_turn(self, eui: str, ended: str) -> None:
        """A transfer ended: a submission queued for the device (R2) starts now."""
        t = self.state.active(eui)
        if t is None or t.state != "pending" or t.submission.id == ended:
            return
        sub = t.submission
        self.alert(sub.supplier, "submission-processed", eui, sub.version, submission=sub.id,
                   status="started", reason=f"your turn: {ended} on this device ended")  # fmt: skip
        self.ota.notify(eui)

    def publish(self, ev: Event) -> None:
        """Send an event (logged or transient, e.g. "progress") to subscribers."""
        for fn in list(self._subs):
            try:
                fn(ev)
            except Exception as exc:  # a broken view must not stop the hub
                self._subs.remove(fn)
                self.log.append("subscriber-error", error=repr(exc))

    def subscribe(self, fn: Callable[[Event], None]) -> Callable[[], None]:
        self._subs.append(fn)
        return lambda: self._subs.remove(fn) if fn in self._subs else None

    def close(self) -> None:
        self.log.close()

    # --- enrolment and submissions -----------------------------------------------------

    def enrol(
        self, record: dict[str, Any] | str | Path, replace_key: bool = False
    ) -> dict[str, Any]:
        """Enrol a device from its provisioning record (dict or JSON file). A device
        already enrolled keeps its public key and CH link key unless `replace_key`
        (whoever holds the one signs the alerts the hub believes, the other seals what
        the device obeys); its suppliers get control API tokens."""
        doc = record
        if isinstance(record, (str, Path)):
            try:
                doc = json.loads(Path(record).read_text())
            except (OSError, ValueError) as exc:
                raise HubError(f"{record}: cannot read device record: {exc}") from None
        try:
            rec, key = parse_record(doc), link_key(doc)
        except EnrolError as exc:
            raise HubError(f"device record refused: {exc}") from None
        for other in self.state.devices.values():
            o = other.record
            if o.short_addr == rec.short_addr and o.eui64 != rec.eui64:
                raise HubError(f"short address {rec.short_addr:#06x} is already {o.eui64}'s")
        old = self.state.devices.get(rec.eui64)
        o = old.record if old is not None else None
        if o is not None and (o.public_key, o.link_key_id) != (rec.public_key, rec.link_key_id):
            which = "public key" if o.public_key != rec.public_key else "CH link key"
            if not replace_key:
                self.record("enrol-refused", device=rec.eui64,
                            reason=f"{which} differs from the enrolled one")  # fmt: skip
                raise HubError(f"{rec.eui64} is enrolled with another {which}: its alerts "
                               "are checked, its commands sealed, with the enrolled keys; "
                               "re-enrol with --replace-key only if the device was "
                               "re-provisioned")  # fmt: skip
            self.record("key-replaced", device=rec.eui64, old_public_key=o.public_key.hex(),
                        old_link_key_id=o.link_key_id)  # fmt: skip
        if key is not None:
            self.link_keys.put(rec.eui64, key)  # never in the event log: its id only
        self.record("enrol", record=rec.to_json())
        for s in rec.suppliers:
            self._issue(cr.supplier(s))
        return rec.to_json()

    def add_anchor(self, key: Path | str | bytes, authority: bool = False) -> dict[str, Any]:
        """Trust a manufacturer public key (PEM file, or 64 bytes X||Y) for submissions:
        an image-signing anchor, or with `authority` a rotation-authority key (the only
        keys 0xFFC0 submissions are verified against). One key never holds both roles."""
        from otaclient import image

        from hanota.image import keys

        from ..output import CommandError

        if isinstance(key, bytes):
            raw = key
        else:
            try:
                raw = keys.raw_public(keys.load_public(key))
            except CommandError as exc:
                raise HubError(str(exc)) from None
        if len(raw) != 64:
            raise HubError("a trust anchor is a P-256 public key (64 bytes X||Y)")
        kid = f"{image.key_id(raw):08x}"
        mine, other = self.state.anchors, self.state.authorities
        role = "authority" if authority else "anchor"
        if authority:
            mine, other = other, mine
        if kid in other:
            raise HubError(f"key {kid} is already trusted as "
                           f"{'an anchor' if authority else 'a rotation authority'}: "
                           "an image-signing key must not also rotate keys")  # fmt: skip
        if mine.get(kid) != raw:
            self.record("trust-anchor", key_id=kid, public_key=raw.hex(), role=role)
        return {"key_id": kid, "public_key": raw.hex(), "role": role}

    def anchors(self) -> dict[int, bytes] | None:
        """What submissions are verified against (None: not checked, check_images off)."""
        if not self.config.check_images:
            return None
        return {int(k, 16): v for k, v in self.state.anchors.items()}

    def authorities(self) -> dict[int, bytes] | None:
        """What key-rotation (0xFFC0) submissions are verified against (None: not checked)."""
        if not self.config.check_images:
            return None
        return {int(k, 16): v for k, v in self.state.authorities.items()}

    def submit(
        self,
        supplier: str,
        devices: list[str],
        files: list[Path | str],
        activate_at: str | int | None = None,
        queue: bool = False,
    ) -> dict[str, Any]:
        """SR 11.4: one image or a set of fragments for some devices. HubError if refused.
        `queue`: where another supplier's image has the device, wait for it (R2)."""
        try:
            image_files = self.store.add(
                [Path(f) for f in files], self.anchors(), self.authorities()
            )
        except SubmissionError as exc:
            self.record("submit-refused", supplier=supplier, devices=devices, reason=str(exc))
            raise HubError(f"submission refused: {exc}") from None
        try:
            plan = plan_submission(self.state, supplier, devices, image_files, queue)
        except SubmissionError as exc:
            self.record("submit-refused", supplier=supplier, devices=devices, reason=str(exc))
            raise HubError(f"submission refused: {exc}") from None
        activate = parse_activate(activate_at)
        for sub_id, eui in plan.replaces:
            self.discard(supplier, submission=sub_id, devices=[eui], why="replaced")
        sub_id = f"s{len(self.state.submissions) + 1}"
        version = image_files[0].version
        files_json = [f.to_json() for f in image_files]
        if plan.accepted or plan.queued:
            self.record("submit", id=sub_id, supplier=supplier, devices=plan.accepted,
                        queued=plan.queued, files=files_json, activate=activate)  # fmt: skip
        self._submission_alerts(sub_id, supplier, version, plan)
        full = [f for f in image_files if f.delta is None]
        result = {"id": sub_id if plan.accepted or plan.queued else None, "supplier": supplier,
                  "version": version, "fragments": len(full),
                  "deltas": [{"base_version": f.base_version, "bytes": f.size}
                             for f in image_files if f.delta is not None],
                  "accepted": plan.accepted, "queued": plan.queued,
                  "refused": plan.refused}  # fmt: skip
        if not plan.accepted and not plan.queued:
            reasons = "; ".join(f"{d}: {r}" for d, r in plan.refused.items())
            raise HubError(f"submission refused for every device: {reasons}")
        for eui in plan.accepted:
            self.ota.notify(eui)
        return result

    def _submission_alerts(self, sub_id: str, supplier: str, version: int, plan: Any) -> None:
        for eui in plan.accepted:
            self.alert(supplier, "submission-processed", eui, version,
                       submission=sub_id, status="accepted")  # fmt: skip
        for eui in plan.queued:
            self.alert(supplier, "submission-processed", eui, version, submission=sub_id,
                       status="queued", reason=plan.why_queued[eui])  # fmt: skip
        for eui, reason in plan.refused.items():
            self.alert(supplier, "submission-processed", eui, version,
                       status="refused", reason=reason)  # fmt: skip
            if eui in plan.hw_mismatch:
                self.alert(supplier, "transfer-failure", eui, version,
                           alert_code=al.CCS08_FAILURE, reason_code=al.REASON_HW_MISMATCH,
                           reason=reason)  # fmt: skip
        for eui, other in plan.conflicts.items():
            queued = eui in plan.queued
            self.alert(other, "conflict", eui, version, by=supplier, queued=queued,
                       reason=f"{supplier} submitted an image while yours is pending"
                       + (": it waits for yours (at most turn_s)" if queued else ""))  # fmt: skip

    def discard(
        self,
        supplier: str,
        submission: str | None = None,
        devices: list[str] | None = None,
        why: str = "discarded by supplier",
    ) -> dict[str, Any]:
        """R5: drop a supplier's image before or during transfer (CCS08 reason 1), or
        while it waits its turn or is held for activation. Only the supplier's own."""
        sub = self.state.submissions.get(submission) if submission is not None else None
        if submission is not None and sub is not None and sub.supplier != supplier:
            raise HubError(f"submission {submission} is not {supplier}'s: not discarded")
        hits = [
            t
            for t in self.state.transfers.values()
            if t.submission.supplier == supplier
            and _discardable(t)
            and (submission is None or t.submission.id == submission)
            and (devices is None or t.device in devices)
        ]
        if not hits:
            raise HubError(f"nothing of {supplier} to discard (already transferred or unknown)")
        for t in hits:
            self.record("discard", submission=t.submission.id, device=t.device, reason=why)
            self.alert(supplier, "transfer-failure", t.device, t.submission.version,
                       submission=t.submission.id, alert_code=al.CCS08_FAILURE,
                       reason_code=al.REASON_DISCARDED, reason=why)  # fmt: skip
        return {"discarded": [{"submission": t.submission.id, "device": t.device} for t in hits]}

    def activate(self, submission: str, at: str | int | None = None,
                 supplier: str | None = None) -> dict[str, Any]:  # fmt: skip
        """Give a held-back submission (activate_at "hold") its activation time. With
        `supplier`, only that supplier's own submission."""
        sub = self.state.submissions.get(submission)
        if sub is None:
            raise HubError(f"unknown submission {submission!r}")
        if supplier is not None and sub.supplier != supplier:
            raise HubError(f"submission {submission} is not {supplier}'s: not activated")
        when = parse_activate(at)
        upgrade = max(zb_now(), when) if isinstance(when, int) else zb_now()
        done = []
        for t in self.state.transfers.values():
            if t.submission is sub and t.state == "complete" and t.upgrade_time == HOLD:
                self.record("activate", submission=sub.id, device=t.device, upgrade_time=upgrade)
                self.ota.activation_due(t)
                done.append(t.device)
        return {"submission": sub.id, "upgrade_time": upgrade, "devices": done}

    def check_turns(self, now: float | None = None) -> list[Transfer]:
        """R2 queueing: a submission that has kept a device from a queued supplier for
        turn_s (from its submission, not yet activated) is discarded: the next starts."""
        limit = self.config.turn_s
        if not limit:
            return []
        now = time.time() if now is None else now
        out = []
        for dev in self.state.devices.values():
            t = self.state.active(dev.record.eui64)
            if not dev.queue or t is None or not _discardable(t) or now - t.submission.t < limit:
                continue
            why = (f"turn over: held the device {now - t.submission.t:.0f} s (turn {limit:.0f} s) "
                   f"while {dev.queue[0]} waits (R2)")  # fmt: skip
            self.discard(t.submission.supplier, t.submission.id, [t.device], why=why)
            out.append(t)
        return out

    def meter_upgrade(self, device: str | None = None, on: bool = True) -> dict[str, Any]:
        """R5: while on, block requests (of `device`, or all) get WAIT_FOR_DATA."""
        if device is not None and device not in self.state.devices:
            raise HubError(f"unknown device {device}")
        self.record("meter-upgrade", device=device, on=on)
        return {"meter_all": self.state.meter_all, "devices": sorted(self.state.meter_devices)}

    def meter_running(self, eui: str) -> bool:
        return self.state.meter_all or eui in self.state.meter_devices

    # --- queries ------------------------------------------------------------------------

    def inventory(self, supplier: str | None = None) -> dict[str, Any]:
        """Every device (with `supplier`: those it serves)."""
        out = []
        for eui, dev in sorted(self.state.devices.items()):
            if supplier is not None and supplier not in dev.record.suppliers:
                continue
            t = self.state.active(eui)
            out.append(dev.to_json(t.to_json() if t is not None else None))
        return {"devices": out}

    def alerts(self, supplier: str | None = None, pending: bool = False) -> list[dict[str, Any]]:
        src = list(self.state.alerts_pending.values()) if pending else self.state.alerts_raised
        return [a.to_json() for a in src if supplier is None or a.supplier == supplier]

    def transfer(self, eui: str) -> Transfer | None:
        return self.state.active(eui)

    def settled(self) -> bool:
        """No transfer open or awaiting confirmation and no alert pending."""
        busy = any(t.state not in ENDED for t in self.state.transfers.values())
        return not busy and not self.state.alerts_pending

    # --- alerts -------------------------------------------------------------------------

    def alert(self, supplier: str, kind: str, device: str, version: int | None,
              base: float | None = None, **fields: Any) -> al.Alert:  # fmt: skip
        """Schedule one alert to one supplier; raised when due (stagger applied)."""
        n = len(self.state.alerts_raised) + len(self.state.alerts_pending) + 1
        alert = al.Alert(f"a{n}", supplier, kind, device, version, self.stagger.due(base), fields)
        self.record("alert-scheduled", alert=alert.to_json())
        self._kick()
        return alert

    def raise_due_alerts(self, now: float | None = None) -> list[al.Alert]:
        now = time.time() if now is None else now
        wait = self.config.confirm_wait_s
        due = sorted(
            (a for a in self.state.alerts_pending.values()
             if a.due <= now and not cf.held_back(self.state, a, now, wait)),
            key=lambda a: a.due,
        )  # fmt: skip
        for a in due:
            extra = cf.raised_fields(self.state, a)
            self.record("alert-raised", id=a.id, at=time.time(), **extra)
            t = cf.closes(self.state, a)
            if t is not None:
                self.record("transfer-closed", submission=t.submission.id, device=t.device)
        return due

    def _kick(self) -> None:
        if self._wake is not None:
            self._wake.set()

    # --- stalls -------------------------------------------------------------------------

    def check_stalls(self, now: float | None = None) -> list[Transfer]:
        """Transfers whose device has asked nothing for stall_timeout_s: each is marked
        `stalled` (still open: the device resumes it when it comes back) and its supplier
        gets a CCS08-like transfer-failure alert (reason 3), once per silence."""
        limit = self.config.stall_timeout_s
        if not limit:
            return []
        now = time.time() if now is None else now
        out = []
        for t in list(self.state.transfers.values()):
            if t.state != "transferring":
                continue
            idle = now - (t.last_request or self._since)
            if idle >= limit:
                self.ota.stalled(t, idle)
                out.append(t)
        return out

    def _next_stall_check(self, now: float) -> float:
        """Seconds until the next transfer could reach the stall timeout."""
        limit = self.config.stall_timeout_s
        times = [(t.last_request or self._since) + limit - now
                 for t in self.state.transfers.values() if t.state == "transferring"]  # fmt: skip
        return min(times) if limit and times else 3600.0

    async def alert_loop(self) -> None:
        """Raise alerts as they fall due (and find stalled transfers), until cancelled."""
        self._wake = asyncio.Event()
        while True:
            self.check_stalls()
            self.check_turns()
            self.raise_due_alerts()
            pending = [a.due for a in self.state.alerts_pending.values()]
            delay = min(pending) - time.time() if pending else 3600.0
            delay = min(delay, self._next_stall_check(time.time()), 60.0)  # turns: a minute
            delay = max(delay, 0.2)  # held-back confirmations are re-checked at this pace
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=max(0.0, min(delay, 3600.0)))
            except TimeoutError:
                pass


def _discardable(t: Transfer) -> bool:
    """Open, queued, or transferred and held for an activation time not yet given."""
    return (
        t.state in OPEN or t.state == QUEUED or (t.state == "complete" and t.upgrade_time == HOLD)
    )


def parse_activate(value: str | int | None) -> str | int:
    """ "now" (default), "hold" (0xFFFFFFFF until `activate`), "+N" seconds from now,
    an ISO-8601 UTC time, or a ZigBee UTC integer."""
    if value is None or value == "now":
        return "now"
    if value == "hold":
        return "hold"
    if isinstance(value, int):
        return value
    text = str(value).strip()
    try:
        if text.startswith("+"):
            return zb_now() + int(float(text[1:]))
        if text.isdigit() or text.lower().startswith("0x"):
            return int(text, 0)
        from datetime import datetime

        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return int(dt.timestamp()) - ZB_EPOCH
    except ValueError:
        raise HubError(
            f"activation time {value!r}: want now, hold, +SECONDS, ISO-8601 or ZigBee seconds"
        ) from None
