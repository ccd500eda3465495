"""The hub's state as a fold over its event log: enrolments, submissions, transfers, alerts.

`HubState.apply(event)` is the only thing that changes state, both live and on replay,
so a hub restarted from its log is the hub that stopped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .alerts import Alert, counter_ranges
from .events import Event
from .inventory import DeviceState, parse_record
from .store import ImageFile

# transfer states: [queued ->] pending -> transferring -> complete -> activated |
# rolled-back | refused -> closed (after version confirmation); or failed / discarded at
# any point. queued: another supplier's transfer has the device (R2), this one starts
# when that ends. transferring -> stalled when the device stops asking for blocks (stall
# timeout), and back to transferring when it asks again: a stalled transfer is still
# open. activated / rolled-back / refused come only from the device's signed alerts.
QUEUED = "queued"
OPEN = ("pending", "transferring", "stalled")
WAITING = ("complete", "activated", "rolled-back", "refused")
ENDED = ("failed", "discarded", "closed")


@dataclass
class Submission:
    id: str
    supplier: str
    devices: list[str]
    files: list[ImageFile]
    activate: str | int  # "now", "hold" or a ZigBee UTC time
    t: float

    @property
    def version(self) -> int:
        return self.files[0].version

    @property
    def full(self) -> list[ImageFile]:
        """The full image's files (fragments in order); [] for a submission of deltas only."""
        return [f for f in self.files if f.delta is None]

    @property
    def deltas(self) -> list[ImageFile]:
        """Its delta files, one per base version."""
        return [f for f in self.files if f.delta is not None]

    @property
    def firmware_bytes(self) -> int:
        """Length of the firmware every image of the submission makes (store.check_set)."""
        f = self.files[0]
        return f.delta["target_length"] if f.delta is not None else f.total_length

    def delta_from(self, version: int | None) -> ImageFile | None:
        """The delta whose base is `version`, if the submission holds one."""
        return next((f for f in self.deltas if f.base_version == version), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "supplier": self.supplier,
            "devices": list(self.devices),
            "version": self.version,
            "activate": self.activate,
            "files": [f.to_json() for f in self.files],
        }


@dataclass
class Transfer:
    """One submission on one device."""

    submission: Submission
    device: str
    state: str = "pending"
    held: set[int] = field(default_factory=set)
    upgrade_time: int | None = None  # ZigBee UTC, or 0xFFFFFFFF while held back
    result: str | None = None
    stalls: int = 0  # times the device went silent mid-transfer (stall timeout)
    # transient (not in the log): what the server has sent of the current fragment
    offset: int = 0
    sent: int = 0
    first_block: float | None = None
    last_block: float | None = None
    ended: float | None = None  # wall time of the Upgrade End Request that held the last file
    last_request: float | None = None  # last request of the device for this transfer
    # the last Upgrade End Request that moved the transfer on: (ZCL sequence, status,
    # monotonic time), and whether a block of the fragment now current has been served
    # since: serving.OtaService._duplicate_end tells a copy of it from a new request
    last_end: tuple[int | None, int, float] | None = None
    fetched: bool = False
    # which of the submission's images this device is served (serving.OtaService.choose,
    # from the version it queries with): a delta's base version, or None for the full
    # image; `chosen` once an image-chosen event said so; refused: delta bases it refused
    delta_base: int | None = None
    chosen: bool = False
    refused: set[int] = field(default_factory=set)

    def files(self) -> list[ImageFile]:
        """The files this device is served: the chosen delta, else the full image."""
        d = self.submission.delta_from(self.delta_base) if self.delta_base is not None else None
        return [d] if d is not None else self.submission.full

    def current(self) -> ImageFile | None:
        """The fragment to serve next: the first one the device has not acknowledged."""
        if self.state not in OPEN:
            return None
        for f in self.files():
            if f.index not in self.held:
                return f
        return None

    def image(self) -> dict[str, Any]:
        """What is (or was) served, for inventory, alerts and history: "delta" (with its
        base version) or "full", its wire and firmware bytes, delta bases refused."""
        files = self.files()
        delta = files[0].delta if files and files[0].delta is not None else None
        return {"image": "delta" if delta else "full" if files else None,
                "delta_base_version": delta["base_version"] if delta else None,
                "image_bytes": sum(f.size for f in files),
                "firmware_bytes": self.submission.firmware_bytes,
                "deltas_refused": sorted(self.refused)}  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        sub, files = self.submission, self.files()
        total = sum(f.size for f in files)
        done = sum(f.size for f in files if f.index in self.held)
        cur = self.current()
        if cur is not None:
            done += min(self.offset, cur.size)
        return {
            "submission": sub.id,
            "supplier": sub.supplier,
            "version": sub.version,
            "state": self.state,
            **self.image(),
            "fragment_count": len(files),
            "fragments_held": sorted(self.held),
            "fragment": cur.index if cur is not None else None,
            "bytes": done,
            "total_bytes": total,
            "bytes_sent": self.sent,
            "upgrade_time": self.upgrade_time,
            "result": self.result,
            "stalls": self.stalls,
            "last_request": self.last_request,
        }


class HubState:
    """Devices, submissions, transfers and alerts, rebuilt from events."""

    def __init__(self) -> None:
        self.devices: dict[str, DeviceState] = {}
        self.submissions: dict[str, Submission] = {}
        self.transfers: dict[tuple[str, str], Transfer] = {}
        self.alerts_pending: dict[str, Alert] = {}
        self.alerts_raised: list[Alert] = []
        self.anchors: dict[str, bytes] = {}  # key id (8 hex digits) -> manufacturer X||Y
        self.authorities: dict[str, bytes] = {}  # the same, of rotation-authority keys
        self.principals: set[str] = set()  # "operator" and "supplier:<id>" with a credential
        self.meter_all = False
        self.meter_devices: set[str] = set()
        self.n_events = 0

    def active(self, eui: str) -> Transfer | None:
        dev = self.devices.get(eui)
        if dev is None or dev.transfer is None:
            return None
        return self.transfers.get((dev.transfer, eui))

    def apply(self, ev: Event) -> None:
        self.n_events += 1
        handler = getattr(self, "_on_" + ev["kind"].replace("-", "_"), None)
        if handler is not None:
            handler(ev)

    def _on_enrol(self, ev: Event) -> None:
        rec = parse_record(ev["record"])
        dev = self.devices.get(rec.eui64)
        if dev is None:
            self.devices[rec.eui64] = DeviceState(record=rec)
        else:
            dev.record = rec

    def _on_trust_anchor(self, ev: Event) -> None:
        keys = self.authorities if ev.get("role") == "authority" else self.anchors
        keys[ev["key_id"]] = bytes.fromhex(ev["public_key"])

    def _on_credential_issued(self, ev: Event) -> None:
        self.principals.add(ev["principal"])

    def _on_submit(self, ev: Event) -> None:
        files = [ImageFile.from_json(f) for f in ev["files"]]
        sub = Submission(ev["id"], ev["supplier"], ev["devices"], files, ev["activate"], ev["t"])
        self.submissions[sub.id] = sub
        for eui in sub.devices:
            self.transfers[(sub.id, eui)] = Transfer(sub, eui)
            self.devices[eui].transfer = sub.id
        for eui in ev.get("queued", []):
            self.transfers[(sub.id, eui)] = Transfer(sub, eui, state=QUEUED)
            self.devices[eui].queue.append(sub.id)
        sub.devices = list(sub.devices) + list(ev.get("queued", []))

    def _on_report(self, ev: Event) -> None:
        """An announce or query: what the device says, unauthenticated (a hint only)."""
        dev = self.devices.get(ev["device"])
        if dev is not None:
            dev.claimed = {"version": ev["version"], "hw_version": ev.get("hw_version"),
                           "boot_status": ev.get("boot_status"), "source": ev.get("source"),
                           "t": ev["t"]}  # fmt: skip

    def _transfer(self, ev: Event) -> Transfer | None:
        return self.transfers.get((ev["submission"], ev["device"]))

    def _on_transfer_start(self, ev: Event) -> None:
        t = self._transfer(ev)
        if t is not None and t.state == "pending":
            t.state = "transferring"

    def _on_transfer_stalled(self, ev: Event) -> None:
        t = self._transfer(ev)
        if t is None or t.state not in OPEN:
            return
        t.state = "stalled"
        t.stalls += 1
        entry = {"submission": t.submission.id, "supplier": t.submission.supplier,
                 "version": t.submission.version, "outcome": "stalled", "t": ev["t"],
                 "reason": ev.get("reason")}  # fmt: skip
        self.devices[t.device].history.append(entry)

    def _on_transfer_resumed(self, ev: Event) -> None:
        t = self._transfer(ev)
        if t is not None and t.state == "stalled":
            t.state = "transferring"

    def _on_image_chosen(self, ev: Event) -> None:
        """Which image the device is served: base_version of the delta, None: the full one."""
        t = self._transfer(ev)
        if t is not None and not t.held:
            t.delta_base, t.chosen, t.offset = ev.get("base_version"), True, 0

    def _on_delta_refused(self, ev: Event) -> None:
        """The device ended a delta's transfer with a failure (e.g. DELTA_BASE: it does not
        run the delta's base): that delta is not offered to it again in this transfer."""
        t = self._transfer(ev)
        if t is not None:
            t.refused.add(ev["base_version"])
            t.delta_base, t.chosen, t.offset = None, False, 0

    def _on_fragment_held(self, ev: Event) -> None:
        t = self._transfer(ev)
        if t is not None:
            t.held.add(ev["fragment"])
            t.offset = 0

    def _on_transfer_complete(self, ev: Event) -> None:
        t = self._transfer(ev)
        if t is not None:
            t.state = "complete"
            t.upgrade_time = ev["upgrade_time"]

    def _on_activate(self, ev: Event) -> None:
        t = self._transfer(ev)
        if t is not None:
            t.upgrade_time = ev["upgrade_time"]

    def _on_activation_result(self, ev: Event) -> None:
        t = self._transfer(ev)
        if t is not None and t.state in WAITING + OPEN:
            t.state = ev["state"]
            t.result = ev["result"]

    def _end(self, ev: Event, state: str) -> None:
        t = self._transfer(ev)
        if t is None:
            return
        queued = t.state == QUEUED
        t.state = state
        dev = self.devices[t.device]
        if t.submission.id in dev.queue:
            dev.queue.remove(t.submission.id)
        if dev.transfer == t.submission.id:
            dev.transfer = None
            if dev.queue:  # R2: the next supplier's submission gets its turn
                nxt = self.transfers.get((dev.queue.pop(0), t.device))
                if nxt is not None:
                    nxt.state = "pending"
                    dev.transfer = nxt.submission.id
        if queued:
            return  # never had the device: no history entry
        entry = {"submission": t.submission.id, "supplier": t.submission.supplier}
        entry.update(version=t.submission.version, outcome=t.result or state, t=ev["t"])
        if t.submission.deltas:  # which image the device got (or was being sent)
            entry.update(t.image())
        if ev.get("reason"):
            entry["reason"] = ev["reason"]
        dev.history.append(entry)

    def _on_transfer_failed(self, ev: Event) -> None:
        self._end(ev, "failed")

    def _on_discard(self, ev: Event) -> None:
        self._end(ev, "discarded")

    def _on_transfer_closed(self, ev: Event) -> None:
        self._end(ev, "closed")

    def _on_activation_alert(self, ev: Event) -> None:
        """A signed alert (valid) moves the device's counters; a success or failure one
        that is the newest received is the evidence of its running version."""
        dev = self.devices.get(ev["device"])
        if dev is None or not ev.get("valid"):
            return
        c = ev["counter"]
        newest = c > dev.last_counter
        dev.missing = counter_ranges(dev.missing, ev.get("gap") or None, c)
        dev.counters.add(c)
        dev.last_counter = max(dev.last_counter, c)
        if newest and ev.get("result") in ("success", "failure"):
            dev.version = ev["version"]
            dev.evidence = {"counter": c, "result": ev["result"], "supplier": ev.get("supplier"),
                            "device_time": ev.get("device_time"), "t": ev["t"]}  # fmt: skip

    def _on_alert_scheduled(self, ev: Event) -> None:
        alert = Alert.from_json(ev["alert"])
        self.alerts_pending[alert.id] = alert

    def _on_alert_raised(self, ev: Event) -> None:
        alert = self.alerts_pending.pop(ev["id"], None)
        if alert is not None:
            alert.at = ev["at"]
            alert.version = ev.get("version", alert.version)
            alert.fields.update(ev.get("fields", {}))
            self.alerts_raised.append(alert)

    def _on_meter_upgrade(self, ev: Event) -> None:
        dev, on = ev.get("device"), ev["on"]
        if dev is None:
            self.meter_all = on
            if not on:
                self.meter_devices.clear()
        elif on:
            self.meter_devices.add(dev)
        else:
            self.meter_devices.discard(dev)

    def _on_link_up(self, ev: Event) -> None:
        dev = self.devices.get(ev.get("device") or "")
        if dev is not None:
            dev.connected, dev.link = True, ev["link"]

    def _on_link_down(self, ev: Event) -> None:
        dev = self.devices.get(ev.get("device") or "")
        if dev is not None:
            dev.connected = False

    def _on_hub_start(self, ev: Event) -> None:
        for dev in self.devices.values():  # links from a previous run are gone
            dev.connected = False
