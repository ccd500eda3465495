"""A minimal Comms Hub for the interop suite: one board, a list of OTA files, and every ZCL
frame built and read by zigpy (its ZCLHeader and the `Ota` cluster's command schemas).

Only the link (framing, sealing) and our manufacturer-specific payloads come from
tests/interop_link.py, written from docs/link-protocol.md. Nothing of `otaclient` or
`hanota` is used, so a mistake the agent and the hub share cannot hide here.

It serves the files in order (the next after an Upgrade End Request REQUIRE_MORE_IMAGE)
with the settings a test picks, and records what it received and served. It is not the
hub: no inventory, no suppliers, no retry policy of its own, one board only.
"""

from __future__ import annotations

import os
import select
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import interop_link as L

try:
    from zigpy.zcl import foundation as F
    from zigpy.zcl.clusters.general import Ota
except ImportError as exc:  # a pinned dependency (requirements.txt): fail, never skip
    raise ImportError("the interop suite needs zigpy (pinned in requirements.txt)") from exc

S2C = F.Direction.Server_to_Client
C2S = F.Direction.Client_to_Server
CMD = Ota.ClientCommandDefs  # what a server sends
REQ = Ota.server_commands  # what a client sends, by command id
DEFAULT_RSP = F.GENERAL_COMMANDS[F.GeneralCommand.Default_Response]
NEVER = 0xFFFFFFFF  # Upgrade End Response upgradeTime: wait for a later response
_HDR = struct.Struct("<HHI")  # mfr, image type, version at offset 10 of an OTA header


class OtaFile(NamedTuple):
    data: bytes
    mfr: int
    image_type: int
    version: int

    @classmethod
    def of(cls, data: bytes) -> OtaFile:
        return cls(data, *_HDR.unpack_from(data, 10))


class Rx(NamedTuple):
    t: float  # time.monotonic() on arrival
    name: str  # zigpy's command name, or device_announce / link_session / activation_alert
    hdr: Any  # zigpy ZCLHeader
    obj: Any  # zigpy schema instance, or an interop_link tuple / nonce
    raw: bytes  # the ZCL payload after the header


class Tx(NamedTuple):
    t: float
    name: str
    obj: Any
    index: int  # the file served or offered (-1: none)
    sealed: bool


@dataclass
class WaitForData:
    """Answer `count` block/page requests at or after file offset `at` with WAIT_FOR_DATA
    (currentTime, requestTime, minimumBlockPeriod ms), then serve data."""

    at: int
    count: int
    current_time: int
    request_time: int
    min_block_period: int


class InteropCH:
    """Serves `files` to the board at `dev_addr` on a byte stream (a sim board's HAN pty).

    block_cap: largest block served (zigpy writes no octet string of 255 bytes);
    pages: answer Image Page Requests (else Default Response UNSUP_CLUSTER_COMMAND);
    hold: answer queries NO_IMAGE_AVAILABLE until notify();
    end_times: (currentTime, upgradeTime) of each Upgrade End Response;
    mfr_frames: handle manufacturer-specific frames (False: dropped unanswered, as a
    standard CH without our code does); ack_alerts: answer alerts with an Alert Ack;
    key: the board's CH link key: seal every command but block responses (section 1.1).
    """

    def __init__(self, files: list[bytes], *, block_cap: int = 254, pages: bool = True,
                 hold: bool = False, wait_for_data: WaitForData | None = None,
                 end_times: tuple[int, int] = (0, 0), mfr_frames: bool = True,
                 ack_alerts: bool = True, key: bytes | None = None, addr: int = 0,
                 dev_addr: int = 1) -> None:  # fmt: skip
        if not 1 <= block_cap <= 254:
            raise ValueError("block_cap 1..254: a ZCL octet string's length 0xFF is invalid")
        self.files = [OtaFile.of(f) for f in files]
        self.block_cap = block_cap
        self.pages = pages
        self.hold = hold
        self.wait_for_data = wait_for_data
        self.end_times = end_times
        self.mfr_frames = mfr_frames
        self.ack_alerts = ack_alerts
        self.key = key
        self.addr, self.dev = addr, dev_addr
        self.idx = 0  # the file offered next
        self.nonce: bytes | None = None  # the board's link session (keyed boards)
        self.counter = 0
        self.rx: list[Rx] = []
        self.tx: list[Tx] = []
        self.served: list[tuple[int, int, int]] = []  # (file index, offset, length)
        self.anomalies: list[str] = []  # anything a standard client would not send
        self._dec = L.Decoder()
        self._lseq = 0
        self._tsn = 0
        self._fd = -1
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    # --- running -----------------------------------------------------------------------

    def start(self, path: str) -> InteropCH:
        """Open the board's HAN pty (raw already) and serve it on a thread."""
        self._fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        self._thread = threading.Thread(target=self._run, name="interop-ch", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> InteropCH:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait(self, pred: Callable[[], Any], timeout: float, what: str) -> Any:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.error:
                raise RuntimeError(f"the CH failed: {self.error!r}") from self.error
            got = pred()
            if got:
                return got
            time.sleep(0.05)
        raise TimeoutError(f"no {what} within {timeout} s; last frames: {self.names()[-12:]}")

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                r, _, _ = select.select([self._fd], [], [], 0.05)
                if not r:
                    continue
                data = os.read(self._fd, 4096)
                for fr in self._dec.feed(data):
                    self._on_frame(fr, time.monotonic())
        except Exception as exc:  # the test sees it through wait()
            self.error = exc

    # --- what the test reads -----------------------------------------------------------

    def names(self) -> list[str]:
        return [r.name for r in self.rx]

    def received(self, name: str) -> list[Rx]:
        return [r for r in self.rx if r.name == name]

    def sent(self, name: str) -> list[Tx]:
        return [t for t in self.tx if t.name == name]

    def link_errors(self) -> dict[str, int]:
        """Frames from the board dropped by the link decoder, by reason."""
        return dict(self._dec.errors)

    def served_bytes(self, index: int) -> list[tuple[int, int]]:
        return sorted((o, n) for i, o, n in self.served if i == index)

    # --- sending -----------------------------------------------------------------------

    def _send(self, name: str, hdr: Any, body: bytes, index: int = -1, obj: Any = None,
              seal: bool = True) -> None:  # fmt: skip
        zcl = hdr.serialize() + body
        # section 1.1: every command to a keyed board is sealed but an Image Block
        # Response; before the board's Link Session there is no nonce to seal with
        seal = seal and name != CMD.image_block_response.name
        with self._lock:
            sealed = seal and self.key is not None and self.nonce is not None
            if sealed:
                self.counter += 1
                zcl = L.seal(self.key, self.nonce, self.addr, self.dev, self.counter, zcl)
            self._lseq = (self._lseq + 1) & 0xFF
            os.write(self._fd, L.encode(self.addr, self.dev, self._lseq, zcl))
            self.tx.append(Tx(time.monotonic(), name, obj, index, sealed))

    def _cluster(self, cmd: Any, tsn: int | None, obj: Any, index: int = -1,
                 seal: bool = True) -> None:  # fmt: skip
        if tsn is None:
            self._tsn = (self._tsn + 1) & 0xFF
            tsn = self._tsn
        hdr = F.ZCLHeader.cluster(tsn=tsn, command_id=cmd.id, direction=S2C)
        self._send(cmd.name, hdr, obj.serialize(), index, obj, seal)

    def _default(self, tsn: int, command_id: int, status: F.Status) -> None:
        hdr = F.ZCLHeader.general(tsn=tsn, command_id=DEFAULT_RSP.id, direction=S2C)
        obj = DEFAULT_RSP.schema(command_id=command_id, status=status)
        self._send("default_response", hdr, obj.serialize(), obj=obj)

    def notify(self, payload_type: int = 0, jitter: int = 100, seal: bool = True) -> None:
        """Release a held image and tell the board: an Image Notify (unicast) of
        `payload_type` with this CH's next file's fields."""
        self.hold = False
        f = self.files[min(self.idx, len(self.files) - 1)]
        fields: dict[str, Any] = {"payload_type": payload_type, "query_jitter": jitter}
        for name, value, least in (("manufacturer_code", f.mfr, 1), ("image_type", f.image_type, 2),
                                   ("new_file_version", f.version, 3)):  # fmt: skip
            if payload_type >= least:
                fields[name] = value
        self._cluster(CMD.image_notify, None, CMD.image_notify.schema(**fields), seal=seal)

    def upgrade_end_response(self, current_time: int, upgrade_time: int, index: int = -1) -> None:
        """An Upgrade End Response for file `index` (default: the last), unsolicited."""
        f = self.files[index]
        obj = CMD.upgrade_end_response.schema(
            manufacturer_code=f.mfr, image_type=f.image_type, file_version=f.version,
            current_time=current_time, upgrade_time=upgrade_time,
        )  # fmt: skip
        self._cluster(CMD.upgrade_end_response, None, obj, index % len(self.files))

    # --- receiving ---------------------------------------------------------------------

    def _on_frame(self, fr: L.Frame, now: float) -> None:
        if fr.src != self.dev or fr.dst != self.addr:
            self.anomalies.append(f"frame {fr.src:#06x}->{fr.dst:#06x}")
        hdr, rest = F.ZCLHeader.deserialize(fr.payload)
        if hdr.direction != C2S:
            self.anomalies.append(f"server-to-client frame from the board: {hdr}")
        if hdr.frame_control.is_manufacturer_specific:
            return self._on_mfr(hdr, rest, now)
        if hdr.frame_control.is_general:
            if hdr.command_id != DEFAULT_RSP.id:
                self.anomalies.append(f"profile-wide command {hdr.command_id:#04x}")
                return
            obj, extra = DEFAULT_RSP.schema.deserialize(rest)
            self._log(now, "default_response", hdr, obj, rest, extra)
            return
        cmd = REQ.get(hdr.command_id)
        if cmd is None:
            self.anomalies.append(f"unknown cluster command {hdr.command_id:#04x}")
            return self._default(hdr.tsn, hdr.command_id, F.Status.UNSUP_CLUSTER_COMMAND)
        obj, extra = cmd.schema.deserialize(rest)
        self._log(now, cmd.name, hdr, obj, rest, extra)
        getattr(self, "_on_" + cmd.name)(hdr, obj)

    def _log(self, now: float, name: str, hdr: Any, obj: Any, raw: bytes, extra: bytes) -> None:
        if extra:
            self.anomalies.append(f"{name}: {len(extra)} bytes after its fields")
        self.rx.append(Rx(now, name, hdr, obj, bytes(raw)))

    def _on_query_next_image(self, hdr: Any, q: Any) -> None:
        f = self.files[self.idx] if self.idx < len(self.files) else None
        if (self.hold or f is None or (q.manufacturer_code, q.image_type) != (f.mfr, f.image_type)
                or f.version <= q.current_file_version):  # fmt: skip
            obj = CMD.query_next_image_response.schema(status=F.Status.NO_IMAGE_AVAILABLE)
            return self._cluster(CMD.query_next_image_response, hdr.tsn, obj)
        obj = CMD.query_next_image_response.schema(
            status=F.Status.SUCCESS, manufacturer_code=f.mfr, image_type=f.image_type,
            file_version=f.version, image_size=len(f.data),
        )  # fmt: skip
        self._cluster(CMD.query_next_image_response, hdr.tsn, obj, self.idx)

    def _file_for(self, r: Any) -> int:
        """The file a block or page request asks for: the one on offer, if it matches."""
        i = self.idx
        if i < len(self.files):
            f = self.files[i]
            if (r.manufacturer_code, r.image_type, r.file_version) == f[1:]:
                return i
        self.anomalies.append(f"request for an image not on offer: {r}")
        return -1

    def _waiting(self, tsn: int, offset: int) -> bool:
        w = self.wait_for_data
        if w is None or w.count <= 0 or offset < w.at:
            return False
        w.count -= 1
        obj = CMD.image_block_response.schema(
            status=F.Status.WAIT_FOR_DATA, current_time=w.current_time,
            request_time=w.request_time, minimum_block_period=w.min_block_period,
        )  # fmt: skip
        self._cluster(CMD.image_block_response, tsn, obj, self.idx)
        return True

    def _block(self, tsn: int, i: int, offset: int, max_size: int) -> int:
        f = self.files[i]
        data = f.data[offset : offset + min(max_size, self.block_cap)]
        obj = CMD.image_block_response.schema(
            status=F.Status.SUCCESS, manufacturer_code=f.mfr, image_type=f.image_type,
            file_version=f.version, file_offset=offset, image_data=data,
        )  # fmt: skip
        self._cluster(CMD.image_block_response, tsn, obj, i)
        self.served.append((i, offset, len(data)))
        return len(data)

    def _on_image_block(self, hdr: Any, r: Any) -> None:
        i = self._file_for(r)
        if i < 0:
            obj = CMD.image_block_response.schema(status=F.Status.NO_IMAGE_AVAILABLE)
            return self._cluster(CMD.image_block_response, hdr.tsn, obj)
        if r.file_offset >= len(self.files[i].data) or r.maximum_data_size == 0:
            self.anomalies.append(f"block request outside the file: {r}")
            return self._default(hdr.tsn, hdr.command_id, F.Status.MALFORMED_COMMAND)
        if not self._waiting(hdr.tsn, r.file_offset):
            self._block(hdr.tsn, i, r.file_offset, r.maximum_data_size)

    def _on_image_page(self, hdr: Any, r: Any) -> None:
        if not self.pages:  # the ZCL OTA cluster: an optional command the server lacks
            return self._default(hdr.tsn, hdr.command_id, F.Status.UNSUP_CLUSTER_COMMAND)
        i = self._file_for(r)
        if i < 0:
            obj = CMD.image_block_response.schema(status=F.Status.NO_IMAGE_AVAILABLE)
            return self._cluster(CMD.image_block_response, hdr.tsn, obj)
        end = min(r.file_offset + r.page_size, len(self.files[i].data))
        if r.file_offset >= end or r.maximum_data_size == 0:
            self.anomalies.append(f"page request outside the file: {r}")
            return self._default(hdr.tsn, hdr.command_id, F.Status.MALFORMED_COMMAND)
        if self._waiting(hdr.tsn, r.file_offset):
            return
        off = r.file_offset
        while off < end:  # the page in blocks, responseSpacing ms apart
            off += self._block(hdr.tsn, i, off, min(r.maximum_data_size, end - off))
            if off < end and r.response_spacing:
                time.sleep(r.response_spacing / 1000)

    def _on_upgrade_end(self, hdr: Any, r: Any) -> None:
        if r.status == F.Status.SUCCESS:
            cur, up = self.end_times
            obj = CMD.upgrade_end_response.schema(
                manufacturer_code=r.manufacturer_code, image_type=r.image_type,
                file_version=r.file_version, current_time=cur, upgrade_time=up,
            )  # fmt: skip
            return self._cluster(CMD.upgrade_end_response, hdr.tsn, obj, self.idx)
        # REQUIRE_MORE_IMAGE (the ZCL OTA cluster: a Default Response SUCCESS, nothing
        # more; the client queries again) and the failures alike
        if r.status == F.Status.REQUIRE_MORE_IMAGE:
            self.idx += 1
        self._default(hdr.tsn, hdr.command_id, F.Status.SUCCESS)

    def _on_query_specific_file(self, hdr: Any, r: Any) -> None:
        self.anomalies.append("query specific file")  # the agent never sends one
        self._default(hdr.tsn, hdr.command_id, F.Status.UNSUP_CLUSTER_COMMAND)

    # --- manufacturer-specific frames (interop_link) ------------------------------------

    _MFR = {
        L.DEVICE_ANNOUNCE: ("device_announce", L.parse_device_announce),
        L.ACTIVATION_ALERT: ("activation_alert", L.parse_activation_alert),
        L.LINK_SESSION: ("link_session", L.parse_link_session),
    }

    def _on_mfr(self, hdr: Any, rest: bytes, now: float) -> None:
        known = self._MFR.get(hdr.command_id) if hdr.manufacturer == L.MFR_HANOTA else None
        if known is None:
            self.anomalies.append(
                f"manufacturer-specific {hdr.manufacturer:#06x}/{hdr.command_id:#04x}"
            )
            return
        name, parse = known
        obj = parse(bytes(rest))
        self._log(now, name, hdr, obj, rest, b"")  # recorded whether handled or not
        if not self.mfr_frames:
            return  # a CH without our manufacturer code: no answer, nothing learnt
        if name == "link_session":
            with self._lock:
                if obj != self.nonce:  # a new session: counters from 1
                    self.nonce, self.counter = obj, 0
        elif name == "activation_alert" and self.ack_alerts:
            ack = F.ZCLHeader.cluster(tsn=hdr.tsn, command_id=L.ALERT_ACK,
                                      manufacturer=L.MFR_HANOTA, direction=S2C)  # fmt: skip
            self._send("alert_ack", ack, L.alert_ack(obj.counter), obj=obj.counter)
