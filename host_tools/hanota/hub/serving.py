"""What the hub answers on the wire: the ZCL OTA server's decisions, one device at a time.

Takes decoded requests (otaclient.zcl namedtuples), returns the responses to send;
no I/O (server.py) and no framing (otaclient.link). Announces and queries are hints:
versions and activation outcomes are taken from the device's signed alerts only (a query's
version only picks which of a submission's images, a delta or the full one, is served).
It reaches its hub only through HubPort (core.Hub is one) and imports nothing above it;
when version confirmations are held, what they carry and what they close is
confirmations.py's.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from otaclient import zcl
from otaclient.policy import KEYS_IMAGE_TYPE

from . import alerts as al
from . import confirmations as cf
from .clock import HOLD, zb_now
from .events import Event
from .inventory import known
from .state import OPEN, WAITING, HubState, Transfer
from .store import ImageStore


class ServiceConfig(Protocol):
    """The settings the OTA service reads (core.HubConfig has them)."""

    block_size: int
    notify_jitter: int
    meter_wait_s: int
    min_block_period_ms: int
    confirm_delay_s: float


class HubPort(Protocol):
    """What the OTA service needs of the hub that owns it: the state it reads, the image
    bytes, the connected links (eui64 -> session with push(rsp)), and the hub's own ways
    to record an event, schedule an alert, publish progress and tell a meter upgrade."""

    state: HubState
    config: ServiceConfig
    store: ImageStore
    links: dict[str, Any]

    def record(self, kind: str, **fields: Any) -> Event: ...

    def alert(self, supplier: str, kind: str, device: str, version: int | None,
              base: float | None = None, **fields: Any) -> al.Alert: ...  # fmt: skip

    def publish(self, ev: Event) -> None: ...

    def meter_running(self, eui: str) -> bool: ...


_RESULT_STATE = {zcl.RESULT_SUCCESS: "activated", zcl.RESULT_FAILURE: "rolled-back",
                 zcl.RESULT_REFUSED: "refused"}  # fmt: skip
_STATUS_NAMES = {v: k for k, v in vars(zcl).items() if k.isupper() and isinstance(v, int)
                 and k in ("SUCCESS", "FAILURE", "ABORT", "INVALID_IMAGE", "NOT_AUTHORIZED",
                           "MALFORMED_COMMAND", "REQUIRE_MORE_IMAGE", "WAIT_FOR_DATA",
                           "NO_IMAGE_AVAILABLE")}  # fmt: skip
_PROGRESS_EVERY_S = 0.1
DUP_END_S = 10.0  # an Upgrade End Request with the same ZCL sequence this soon is a copy
Rsp = Any  # an otaclient.zcl response namedtuple
# the answer to an Upgrade End Request REQUIRE_MORE_IMAGE (ZCL OTA: nothing more is done)
MORE_ACK = zcl.DefaultRsp(zcl.UPGRADE_END_REQ, zcl.SUCCESS)


def status_name(status: int) -> str:
    return _STATUS_NAMES.get(status, f"0x{status:02x}")


class OtaService:
    """The OTA server role of one hub, for all its devices."""

    def __init__(self, hub: HubPort):
        self.hub = hub
        self._progress_t: dict[str, float] = {}

    @property
    def state(self) -> HubState:
        return self.hub.state

    # --- reports -------------------------------------------------------------------------

    def report(self, eui: str, version: int, hw: int | None, boot: int | None, src: str) -> None:
        """What the device says it runs (announce, query): unsigned, so kept as a claim
        beside the inventory's signed version, never in place of it."""
        c = self.state.devices[eui].claimed or {}
        if src == "announce" or (version, hw) != (c.get("version"), c.get("hw_version", hw)):
            self.hub.record("report", device=eui, version=version, hw_version=hw,
                            boot_status=boot, source=src)  # fmt: skip

    def announce(self, eui: str, ann: Any) -> list[Rsp]:
        """DEVICE_ANNOUNCE (after every boot, R7): a hint. Its claims are logged and it is
        offered what is pending; it moves no transfer (its boot status is unsigned: the
        activation outcome comes from the signed alert that follows it)."""
        self.report(eui, ann.version, ann.hw_version, ann.boot_status, "announce")
        offer = self.offer(eui)
        return [offer] if offer is not None else []

    def offer(self, eui: str) -> Rsp | None:
        """An Image Notify for the device's next file, if it has one to fetch (before its
        query has chosen between a delta and the full image, any file of the submission:
        they all name the same image)."""
        t = self.state.active(eui)
        f = t.current() if t is not None else None
        if f is None and t is not None and t.state in OPEN and not t.held and not t.chosen:
            f = t.submission.files[0]
        if f is None:
            return None
        jitter = self.hub.config.notify_jitter
        return zcl.ImageNotify(3, jitter, f.mfr, f.image_type, f.version)

    def notify(self, eui: str) -> None:
        """Push an Image Notify to a connected device (after a submission)."""
        msg = self.offer(eui)
        session = self.hub.links.get(eui)
        if msg is not None and session is not None:
            session.push(msg)

    # --- Query Next Image, blocks ---------------------------------------------------------

    def query(self, eui: str, req: Any) -> Rsp:
        self.report(eui, req.version, req.hw_version, None, "query")
        t = self.state.active(eui)
        if t is not None and t.state in OPEN and t.submission.deltas:
            self.choose(t, req.version)
        f = t.current() if t is not None else None
        types = (req.image_type, KEYS_IMAGE_TYPE)  # a key-rotation image answers any query
        if t is None or f is None or req.mfr != f.mfr or f.image_type not in types:
            return zcl.QueryNextImageRsp(zcl.NO_IMAGE_AVAILABLE, None, None, None, None)
        hw = req.hw_version
        if hw is not None and not f.hw_min <= hw <= f.hw_max:
            reason = f"hardware version {hw:#06x} outside {f.hw_min:#06x}..{f.hw_max:#06x}"
            self.fail(t, al.REASON_HW_MISMATCH, reason)
            return zcl.QueryNextImageRsp(zcl.NO_IMAGE_AVAILABLE, None, None, None, None)
        return zcl.QueryNextImageRsp(zcl.SUCCESS, f.mfr, f.image_type, f.version, f.size)

    def choose(self, t: Transfer, version: int) -> None:
        """A submission with deltas: serve the device the delta from the version it queries
        with (unless it refused that one), else the full image; once a fragment is held
        the choice stands. The query's version is unauthenticated, and need not be: a
        delta for another base is refused by the device with nothing written, and the
        next query gets the full image. No full image and no delta for the device: the
        transfer fails (the supplier is told why)."""
        if t.held:
            return
        sub = t.submission
        d = sub.delta_from(version) if version not in t.refused else None
        base = d.base_version if d is not None else None
        if d is None and not sub.full:
            have = ", ".join(f"{f.base_version:#010x}" for f in sub.deltas)
            self.fail(t, al.REASON_TRANSFER, f"no image for this device: it runs "
                      f"{version:#010x}, the submission holds deltas from {have} only"
                      + (" (refused)" if version in t.refused else ""))  # fmt: skip
            return
        if t.chosen and base == t.delta_base:
            return
        why = ("the device refused the delta from its version" if version in t.refused
               else "the device runs the delta's base version" if d is not None
               else "no delta from the device's version")  # fmt: skip
        size = d.size if d is not None else sum(x.size for x in sub.full)
        self.hub.record("image-chosen", submission=sub.id, device=t.device,
                        image="delta" if d is not None else "full", base_version=base,
                        device_version=version, bytes=size, reason=why)  # fmt: skip

    def block(self, eui: str, req: Any, offset: int, max_size: int) -> Rsp:
        """One Image Block Response (a page is a run of these)."""
        t = self.state.active(eui)
        f = t.current() if t is not None else None
        if t is None or f is None:
            return _block_status(zcl.ABORT)
        if self.hub.meter_running(eui):
            now, cfg = zb_now(), self.hub.config
            return zcl.ImageBlockRsp(zcl.WAIT_FOR_DATA, None, None, None, None, None,
                                     now, now + cfg.meter_wait_s, cfg.min_block_period_ms)  # fmt: skip
        if (req.mfr, req.image_type, req.version) != (f.mfr, f.image_type, f.version):
            return _block_status(zcl.ABORT)
        n = min(max_size, self.hub.config.block_size, f.size - offset)
        if n <= 0:
            return _block_status(zcl.MALFORMED_COMMAND)
        if t.state == "pending":
            self.hub.record("transfer-start", submission=t.submission.id, device=eui,
                            fragment=f.index)  # fmt: skip
        data = self.hub.store.data(f.sha256)[offset : offset + n]
        t.fetched = True
        self._progress(t, offset + n, n)
        return zcl.ImageBlockRsp(zcl.SUCCESS, f.mfr, f.image_type, f.version, offset, data,
                                 None, None, None)  # fmt: skip

    def seen(self, eui: str) -> None:
        """The device asked something about its transfer (query, block, page, end): it is
        alive, so the stall timer of its open transfer restarts."""
        t = self.state.active(eui)
        if t is None:
            return
        t.last_request = time.time()
        if t.state == "stalled":  # back after a stall: the same transfer goes on
            self.hub.record("transfer-resumed", submission=t.submission.id, device=eui,
                            offset=t.offset)  # fmt: skip

    def stalled(self, t: Transfer, idle: float) -> None:
        """No request for stall_timeout_s mid-transfer: CCS08-like transfer failure to the
        submitting supplier; the transfer stays open and resumes if the device returns."""
        sub, f = t.submission, t.current()
        reason = (f"transfer stalled: no request from the device for {idle:.0f} s "
                  f"(fragment {f.index if f else '?'} at byte {t.offset}); it resumes if "
                  "the device comes back")  # fmt: skip
        self.hub.record("transfer-stalled", submission=sub.id, device=t.device,
                        idle_s=round(idle, 1), offset=t.offset, reason=reason)  # fmt: skip
        self.hub.alert(sub.supplier, "transfer-failure", t.device, sub.version,
                       submission=sub.id, alert_code=al.CCS08_FAILURE,
                       reason_code=al.REASON_TRANSFER, reason=reason, stalled=True)  # fmt: skip

    def file_size(self, eui: str) -> int:
        """Size of the file the device is fetching now (0 if none)."""
        t = self.state.active(eui)
        f = t.current() if t is not None else None
        return f.size if f is not None else 0

    def _progress(self, t: Transfer, end: int, n: int) -> None:
        now = time.time()
        t.offset = max(t.offset, end)
        t.sent += n
        t.first_block = t.first_block or now
        t.last_block = now
        if now - self._progress_t.get(t.device, 0.0) >= _PROGRESS_EVERY_S:
            self._progress_t[t.device] = now
            self.publish_progress(t)

    def publish_progress(self, t: Transfer) -> None:
        doc = t.to_json()
        self.hub.publish({"kind": "progress", "t": time.time(), "device": t.device, **doc})

    # --- Upgrade End, activation ---------------------------------------------------------

    def upgrade_end(self, eui: str, req: Any, zseq: int | None = None) -> list[Rsp]:
        """Upgrade End Request; `zseq` is its ZCL sequence number (duplicate spotting)."""
        t = self.state.active(eui)
        if t is None:
            return []
        sub = t.submission
        if t.state in WAITING:
            if req.status != zcl.SUCCESS or req.version != sub.version:
                return []
            f = sub.files[-1]
            return [zcl.UpgradeEndRsp(f.mfr, f.image_type, f.version, zb_now(),
                                      t.upgrade_time)]  # fmt: skip
        f = t.current()
        if f is None or (req.mfr, req.image_type, req.version) != (f.mfr, f.image_type, f.version):
            return []
        if self._duplicate_end(t, req, zseq):
            # the end of the fragment already held, again: the same answer, nothing moves
            self.hub.record("upgrade-end-duplicate", submission=sub.id, device=eui, zseq=zseq,
                            status=status_name(req.status), fragment=f.index - 1)  # fmt: skip
            if req.status == zcl.REQUIRE_MORE_IMAGE:
                return [MORE_ACK]
            offer = self.offer(eui)
            return [offer] if offer is not None else []
        n_files = len(t.files())
        last = f.index == n_files - 1
        if req.status == zcl.REQUIRE_MORE_IMAGE and last:
            self.fail(t, al.REASON_TRANSFER, f"device asked for more than {n_files} files")
            return []
        if req.status in (zcl.REQUIRE_MORE_IMAGE, zcl.SUCCESS):
            self.hub.record("fragment-held", submission=sub.id, device=eui, fragment=f.index)
            t.last_end, t.fetched = (zseq, req.status, time.monotonic()), False
            self.publish_progress(t)
            if last:
                t.ended = time.time()
            if not last:
                # ZCL OTA: a server does nothing more on REQUIRE_MORE_IMAGE than a Default
                # Response SUCCESS; the client re-initiates with its Query Next Image Request,
                # which is offered the next fragment (an Image Notify here would draw a second
                # query, and the fragment would be offered twice)
                return [MORE_ACK]
            if f.image_type == KEYS_IMAGE_TYPE:
                return self._rotation_applied(t)
            return [self._complete(t)]
        if f.delta is not None:
            return self._delta_refused(t, f, req.status, zseq)
        self.fail(t, al.REASON_TRANSFER, f"device ended the transfer: {status_name(req.status)}")
        return []

    def _delta_refused(self, t: Transfer, f: Any, status: int, zseq: int | None) -> list[Rsp]:
        """The device ended a delta with a failure (DELTA_BASE: the bytes it runs are not
        the base, whatever its version says; or a bad patch): the full image instead, at
        its next query, which an Image Notify asks for now. Without a full image the
        transfer fails. A copy of that request (a duplicated frame) is then recognised as
        one by _duplicate_end until a block of the full image is served."""
        sub = t.submission
        self.hub.record("delta-refused", submission=sub.id, device=t.device,
                        base_version=f.base_version, status=status_name(status))  # fmt: skip
        t.last_end, t.fetched = (zseq, status, time.monotonic()), False
        if not sub.full:
            self.fail(t, al.REASON_TRANSFER, f"device refused the delta from "
                      f"{f.base_version:#010x} ({status_name(status)}) and the submission "
                      "holds no full image")  # fmt: skip
            return []
        offer = self.offer(t.device)
        return [offer] if offer is not None else []

    @staticmethod
    def _duplicate_end(t: Transfer, req: Any, zseq: int | None) -> bool:
        """A copy of the Upgrade End Request that held the previous fragment (the request
        names no fragment): same status, and no block of the current fragment fetched
        since (the agent fetches at least a fragment's header before it ends it), or the
        same ZCL sequence number within DUP_END_S (a late copy; the agent numbers every
        request anew, so a new one repeats the number only after 256 more requests).
        Known within this hub's run only: after a restart an end request is taken as new."""
        if t.last_end is None or req.status != t.last_end[1]:
            return False
        zseq0, _, t0 = t.last_end
        late_copy = zseq is not None and zseq == zseq0 and time.monotonic() - t0 <= DUP_END_S
        return not t.fetched or late_copy

    def _complete(self, t: Transfer) -> Rsp:
        sub, now = t.submission, zb_now()
        upgrade = HOLD if sub.activate == "hold" else now
        if isinstance(sub.activate, int):
            upgrade = max(now, sub.activate)
        self.hub.record("transfer-complete", submission=sub.id, device=t.device,
                        current_time=now, upgrade_time=upgrade)  # fmt: skip
        self.hub.alert(sub.supplier, "transfer-success", t.device, sub.version,
                       submission=sub.id, alert_code=al.CCS08_SUCCESS, **t.image())  # fmt: skip
        if upgrade != HOLD:
            self._confirmations(t)
        f = t.files()[-1]
        return zcl.UpgradeEndRsp(f.mfr, f.image_type, f.version, now, upgrade)

    def _rotation_applied(self, t: Transfer) -> list[Rsp]:
        """A key-rotation image the device says it applied (its Upgrade End Request, which
        is unsigned): nothing is activated, so the transfer closes here. That the device
        holds the new keys shows later, in the signed alerts of an image signed by them."""
        sub = t.submission
        self.hub.record("transfer-complete", submission=sub.id, device=t.device,
                        current_time=zb_now(), upgrade_time=None)  # fmt: skip
        self.hub.alert(sub.supplier, "transfer-success", t.device, sub.version,
                       submission=sub.id, alert_code=al.CCS08_SUCCESS, rotation=True)  # fmt: skip
        self.hub.record("transfer-closed", submission=sub.id, device=t.device,
                        reason="key rotation applied, as the device's (unsigned) Upgrade "
                        "End Request says")  # fmt: skip
        return []

    def activation_due(self, t: Transfer) -> None:
        """A held-back transfer got its time: tell the device, schedule confirmations."""
        self._confirmations(t)
        f = t.submission.files[-1]
        rsp = zcl.UpgradeEndRsp(f.mfr, f.image_type, f.version, zb_now(), t.upgrade_time)
        session = self.hub.links.get(t.device)
        if session is not None:
            session.push(rsp)

    def _confirmations(self, t: Transfer) -> None:
        base = cf.base_due(t, self.hub.config.confirm_delay_s)
        for supplier in self.state.devices[t.device].record.suppliers:
            self.hub.alert(supplier, "version-confirmation", t.device, None, base=base,
                           submission=t.submission.id, expected=t.submission.version)  # fmt: skip

    def fail(self, t: Transfer, code: int, reason: str) -> None:
        sub = t.submission
        self.hub.record("transfer-failed", submission=sub.id, device=t.device,
                        reason_code=code, reason=reason)  # fmt: skip
        self.hub.alert(sub.supplier, "transfer-failure", t.device, sub.version,
                       submission=sub.id, alert_code=al.CCS08_FAILURE, reason_code=code,
                       reason=reason)  # fmt: skip

    def _result(self, t: Transfer, state: str, result: str) -> None:
        if t.state != state:
            self.hub.record("activation-result", submission=t.submission.id, device=t.device,
                            state=state, result=result)  # fmt: skip

    def activation_alert(self, eui: str, payload: bytes) -> list[Rsp]:
        """The device's signed ACTIVATION_ALERT: check it against the enrolled key, forward
        it as signed to the supplier it names, report counters it skipped, ack it."""
        a = zcl.decode_activation_alert(payload)
        dev = self.state.devices[eui]
        valid = al.check_activation_alert(eui, dev.record.public_key, payload)
        result = al.ACTIVATION_RESULTS[a.result] if a.result < 4 else str(a.result)
        fields = dict(device=eui, supplier=a.supplier, version=a.version, result=result,
                      counter=a.counter, device_time=a.timestamp, valid=valid)  # fmt: skip
        if not valid:
            self.hub.record("activation-alert", **fields, error="bad signature: not forwarded")
            return []
        if a.counter in dev.counters:
            return [zcl.AlertAck(a.counter)]  # a retry: already forwarded
        gap = [dev.last_counter + 1, a.counter - 1] if a.counter > dev.last_counter + 1 else []
        late = a.counter < dev.last_counter  # one of the missing counters, arriving now
        self.hub.record("activation-alert", **fields, gap=gap, late=late)
        signed = al.signed_record(eui, dev.record.public_key, payload)
        if a.supplier in dev.record.suppliers:
            self.hub.alert(a.supplier, "activation", eui, known(a.version), result=result,
                           alert_code=a.alert_code, counter=a.counter, device_time=a.timestamp,
                           counter_gap=gap, late=late, hub_verified=True, signed=signed)  # fmt: skip
        else:
            self.hub.record("alert-unknown-supplier", device=eui, supplier=a.supplier)
        if gap:  # alerts the device sent that never reached the hub: told to every supplier
            for s in dev.record.suppliers:
                self.hub.alert(s, "alert-gap", eui, None, missing=gap, before=a.counter,
                               reason=al.GAP_REASON)  # fmt: skip
        t = self.state.active(eui)
        state = _RESULT_STATE.get(a.result)
        if t is not None and state and not late and (t.state in WAITING or t.state in OPEN):
            if a.result != zcl.RESULT_SUCCESS or a.version == t.submission.version:
                self._result(t, state, result)
        return [zcl.AlertAck(a.counter)]


def _block_status(status: int) -> Rsp:
    return zcl.ImageBlockRsp(status, None, None, None, None, None, None, None, None)
