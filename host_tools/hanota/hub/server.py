"""The per-link ZCL OTA server (asyncio): bytes -> otaclient.link frames -> otaclient.zcl
commands -> serving.OtaService -> responses, for many links at once.

I/O, pacing and link security only: the decisions are OtaService's, the codecs are the
board's own. A link is bound to one enrolled device by configuration; no frame re-binds it.
Commands to a device enrolled with a CH link key are sealed in its link session.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from otaclient import link, zcl

from hanota.link.transport import open_link

if TYPE_CHECKING:
    from .core import Hub

_BROADCAST = 0xFFFF
_LOGGED_BAD = 5  # bad frames logged per session; later ones are only counted
_READ = 4096
# A frame equal to one of the last _DUP_FRAMES from the same sender (same link sequence
# number, same bytes) within _DUP_S is a copy made by the line, not a new request: the
# device numbers every frame it sends (link-protocol.md), so a retry has a new number.
_DUP_FRAMES = 16
_DUP_S = 5.0
_Sent = list[tuple[Any, int]]  # responses sent for one frame, with their ZCL sequence
# what a device asks while it fetches: each restarts the hub's stall timer
_TRANSFER_REQUESTS = (zcl.QueryNextImageReq, zcl.ImageBlockReq, zcl.ImagePageReq,
                      zcl.UpgradeEndReq)  # fmt: skip


class LinkSession:
    """One device link, bound to `eui` (the configuration's `--link PATH=EUI64`): reads
    requests, answers them, pushes notifies. Frames that claim another device (an
    announce of another EUI-64, another short address) are refused and logged."""

    def __init__(self, hub: Hub, name: str, reader: Any, writer: Any, eui: str):
        self.hub = hub
        self.name = name
        self.reader = reader
        self.writer = writer
        self.eui: str = eui.lower()
        self.dst = _BROADCAST
        self.stats: Counter[str] = Counter()
        self._seq = 0
        self._zseq = 0
        self._pages: asyncio.Queue[tuple[int, Any, int, int, int]] = asyncio.Queue()
        self._gen = 0
        self._next_off = -1
        self._unknown: set[str] = set()
        self._nonce: bytes | None = None  # the device's link session, from its LINK_SESSION
        self._ctr = 0  # the last counter sealed in that session
        # recent frames in: ((src, link seq, payload), time, responses sent for it)
        self._recent: deque[tuple[tuple[int, int, bytes], float, _Sent]] = deque(maxlen=_DUP_FRAMES)
        self.decoder = link.Decoder()
        self._attach()

    # --- lifecycle ----------------------------------------------------------------------

    async def run(self) -> None:
        """Serve until the link closes (EOF or I/O error)."""
        pages = asyncio.create_task(self._page_loop())
        dec = self.decoder
        try:
            while True:
                try:
                    data = await self.reader.read(_READ)
                except (OSError, ConnectionError):
                    data = b""
                if not data:
                    break
                self.stats["bytes_in"] += len(data)
                dec.feed(data)
                while (frame := dec.next()) is not None:
                    self._handle(*frame)
        finally:
            pages.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pages
            self._detach()

    def counters(self) -> dict[str, int]:
        """Frame and byte counters, with the link decoder's errors as link_crc etc."""
        out = dict(self.stats)
        out.update({"link_" + k: v for k, v in self.decoder.errors.items()})
        return out

    def _attach(self) -> None:
        """Serve the configured device here: its enrolled short address is the one frames
        go to (and must come from)."""
        eui = self.eui
        dev = self.hub.state.devices.get(eui)
        self.dst = dev.record.short_addr if dev is not None else _BROADCAST
        self.hub.links[eui] = self
        if dev is not None and not (dev.connected and dev.link == self.name):
            self.hub.record("link-up", link=self.name, device=eui)

    def _detach(self) -> None:
        if self.hub.links.get(self.eui) is self:
            del self.hub.links[self.eui]
            self.hub.record("link-down", link=self.name, device=self.eui, stats=self.counters())

    # --- frames in ----------------------------------------------------------------------

    def _handle(self, src: int, dst: int, lseq: int, payload: bytes) -> None:
        if dst not in (self.hub.config.short_addr, _BROADCAST):
            self.stats["not_for_us"] += 1
            return
        try:
            head: tuple | zcl.ZclError = zcl.decode_frame(payload)
        except zcl.ZclError as exc:
            head = exc
        sent = self._duplicate(src, lseq, payload, _is_announce(head))
        if sent is None:
            return
        cmd = None
        try:
            if isinstance(head, zcl.ZclError):
                raise head
            cmd, zseq, s2c, mfr, body = head
            if s2c:
                raise zcl.ZclError("SERVER_TO_CLIENT", zcl.UNSUP_CLUSTER_COMMAND)
            obj = zcl.decode_command(cmd, body, s2c, mfr)
        except zcl.ZclError as exc:
            self._bad(src, cmd, exc.code)
            if cmd is not None and cmd != zcl.DEFAULT_RSP:
                self._reply(sent, zcl.DefaultRsp(cmd, exc.status), 0)
            return
        eui = self._device(src, obj)
        if eui is None:
            return
        self.stats["frames_in"] += 1
        try:
            for rsp in self._dispatch(eui, obj, zseq, body):
                self._reply(sent, rsp, zseq)
        except Exception as exc:  # a bug or a device answering garbage: log, keep serving
            self.hub.record("server-error", link=self.name, device=eui, error=repr(exc))

    def _duplicate(self, src: int, lseq: int, payload: bytes, announce: bool) -> _Sent | None:
        """None for a copy of a recent frame (its responses are sent again, nothing is
        processed twice; a block or page request has none: it is being served); else the
        list that collects this frame's responses."""
        key, now = (src, lseq, bytes(payload)), time.monotonic()
        if announce:
            # a (re)booted device: its link sequence starts again, so its next frames may
            # equal the last boot's byte for byte; forget those (an announce is idempotent)
            kept = [r for r in self._recent if r[0][0] != src]
            self._recent.clear()
            self._recent.extend(kept)
        for k, t, sent in self._recent:
            if k == key and now - t <= _DUP_S:
                self.stats["duplicates"] += 1
                for rsp, zseq in sent:
                    self._send(rsp, zseq)
                return None
        fresh: _Sent = []
        self._recent.append((key, now, fresh))
        return fresh

    def _reply(self, sent: _Sent, rsp: Any, zseq: int) -> None:
        sent.append((rsp, zseq))
        self._send(rsp, zseq)

    def _bad(self, src: int, cmd: int | None, code: str) -> None:
        self.stats["bad_frames"] += 1
        if self.stats["bad_frames"] <= _LOGGED_BAD:
            self.hub.record("bad-frame", link=self.name, src=src, cmd=cmd, error=code)

    def _device(self, src: int, obj: Any) -> str | None:
        """The link's own device, if the frame is from it; None (logged) otherwise. An
        announce carrying another EUI-64, or a frame from another short address than the
        enrolled one, is refused: it changes nothing (docs/security.md)."""
        eui = self.eui
        dev = self.hub.state.devices.get(eui)
        if dev is None:
            if eui not in self._unknown:
                self._unknown.add(eui)
                self.hub.record("unknown-device", link=self.name, src=src, device=eui)
            return None
        if isinstance(obj, zcl.DeviceAnnounce) and obj.eui64.hex() != eui:
            self._refuse(src, f"announce of {obj.eui64.hex()} on {eui}'s link")
            return None
        if src != dev.record.short_addr:
            self._refuse(src, f"frame from short address {src:#06x} on {eui}'s link "
                         f"(enrolled {dev.record.short_addr:#06x})")  # fmt: skip
            return None
        if self.hub.links.get(eui) is not self or self.dst != src:
            self._attach()  # enrolled after the link came up, or another session took it
        return eui

    def _refuse(self, src: int, why: str) -> None:
        self.stats["refused"] += 1
        if self.stats["refused"] <= _LOGGED_BAD:
            self.hub.record("frame-refused", link=self.name, device=self.eui, src=src, reason=why)

    def _dispatch(self, eui: str, obj: Any, zseq: int, body: bytes) -> list[Any]:
        """The responses to one request (block and page responses go out from _page_loop)."""
        ota = self.hub.ota
        if isinstance(obj, _TRANSFER_REQUESTS):
            ota.seen(eui)
        if isinstance(obj, zcl.ImageBlockReq):
            self._pages.put_nowait((self._gen, obj, zseq, obj.offset, obj.offset + 1))
            return []
        if isinstance(obj, zcl.ImagePageReq):
            # a page that starts where the last one asked ends (the device asks the next
            # before the current one is in) is served after it; any other (a re-request
            # from a gap, or after silence) drops what is still queued or being served
            if obj.offset != self._next_off:
                self._gen += 1
            self._next_off = obj.offset + obj.page_size
            self._pages.put_nowait((self._gen, obj, zseq, obj.offset, self._next_off))
            return []
        if isinstance(obj, zcl.LinkSession):
            return self._session(obj.nonce)
        if isinstance(obj, zcl.DeviceAnnounce):
            return ota.announce(eui, obj)
        if isinstance(obj, zcl.QueryNextImageReq):
            return [ota.query(eui, obj)]
        if isinstance(obj, zcl.UpgradeEndReq):
            return ota.upgrade_end(eui, obj, zseq)
        if isinstance(obj, zcl.ActivationAlert):
            return ota.activation_alert(eui, body)
        return []  # a Default Response from the device: nothing to answer

    def _session(self, nonce: bytes) -> list[Any]:
        """The device began a link session (at boot, or after refusing a frame): seal from
        counter 1 under its nonce. The same nonce again keeps the counter: a replayed
        LINK_SESSION must not make the hub reuse counters the device has seen."""
        if nonce != self._nonce:
            # a session after another (or after a command the hub could not seal): the
            # device refused what the hub sent last, so its offer goes again now, sealed,
            # rather than when the device's own retry (retry_s) comes round
            again = self._nonce is not None or self.stats["unsealed"] > 0
            self._nonce, self._ctr = nonce, 0
            self.stats["link_sessions"] += 1
            if self.stats["link_sessions"] <= _LOGGED_BAD:
                self.hub.record("link-session", link=self.name, device=self.eui)
            offer = self.hub.ota.offer(self.eui) if again and self.eui else None
            if offer is not None:
                return [offer]
        return []

    def _seal(self, obj: Any, frame: bytes) -> bytes:
        """A command as the device must get it: sealed in its link session when it was
        enrolled with a CH link key (docs/link-protocol.md 1.1). An Image Block Response
        is never sealed (the image's signed hash chain checks its data); before the device
        told its nonce a command goes unsealed, the device refuses it and starts a session."""
        key = self.hub.link_keys.get(self.eui)
        if key is None or isinstance(obj, zcl.ImageBlockRsp):
            return frame
        if self._nonce is None:
            self.stats["unsealed"] += 1
            return frame
        self._ctr += 1
        src = self.hub.config.short_addr
        return link.seal(link.pads(key), self._nonce, src, self.dst, self._ctr, frame)

    # --- frames out ---------------------------------------------------------------------

    async def _page_loop(self) -> None:
        """Block and page responses, in order; a page is spaced by its responseSpacing.
        A page's last block ends at the page's end: the device may have asked for the
        next page already (pipelined), which starts there."""
        while True:
            gen, req, zseq, off, end = await self._pages.get()
            page = isinstance(req, zcl.ImagePageReq)
            spacing = req.spacing if page else 0
            spacing = max(spacing, self.hub.config.min_block_period_ms) / 1000.0
            while off < end and gen == self._gen:
                size = self.hub.ota.file_size(self.eui)
                if off >= size and off > req.offset:
                    break  # page runs past the end of the file
                n = min(req.max_size, end - off) if page else req.max_size
                rsp = self.hub.ota.block(self.eui, req, off, n)
                self._send(rsp, zseq)
                if rsp.status != zcl.SUCCESS:
                    break
                off += len(rsp.data)
                if spacing:
                    await asyncio.sleep(spacing)
                else:
                    await self._drain()

    async def _drain(self) -> None:
        try:
            await self.writer.drain()
        except (OSError, ConnectionError):
            pass

    def push(self, obj: Any) -> None:
        """An unsolicited server-to-client command (Image Notify, Upgrade End Response)."""
        self._zseq = (self._zseq + 1) & 0xFF
        self._send(obj, self._zseq)

    def _send(self, obj: Any, zseq: int) -> None:
        frame = self._seal(obj, zcl.encode_command(obj, zseq, server_to_client=True))
        self._seq = (self._seq + 1) & 0xFF
        data = link.encode(self.hub.config.short_addr, self.dst, self._seq, frame)
        try:
            self.writer.write(data)
        except (OSError, ConnectionError, RuntimeError):
            self.stats["write_errors"] += 1
            return
        self.stats["frames_out"] += 1
        self.stats["bytes_out"] += len(data)


async def serve_path(
    hub: Hub, path: str, eui: str, baud: int = 115200, retry_s: float = 1.0, *,
    opened: tuple[Any, Any] | None = None, on_session: Callable[[LinkSession], Any] | None = None,
) -> None:  # fmt: skip
    """Serve a link (a serial port or pty path, or a URL: transport.open_link) until
    cancelled; reopen it when it goes away. `opened`: the link's first (reader, writer),
    opened by the caller (whose error a failing first open is); `on_session`: told of
    each LinkSession as it starts."""
    failing = False
    while True:
        if opened is not None:
            (reader, writer), opened = opened, None
        else:
            try:
                reader, writer = await open_link(path, baud)
            except ConnectionError as exc:
                if not failing:
                    hub.record("link-error", link=path, error=str(exc))
                    failing = True
                await asyncio.sleep(retry_s)
                continue
        failing = False
        session = LinkSession(hub, path, reader, writer, eui)
        if on_session is not None:
            on_session(session)
        try:
            await session.run()
        finally:
            writer.close()
        await asyncio.sleep(retry_s)


def parse_link(spec: str) -> tuple[str, str]:
    """ "PATH=EUI64" or "URL=EUI64" -> (path, eui64). The EUI-64 is required: a link
    serves the device the configuration names, never whichever device a frame claims to
    be. It follows the last "=" (a URL's options may hold others)."""
    path, _, eui = spec.rpartition("=")
    if not path:
        path, eui = eui, ""
    eui = eui.strip().lower()
    if not eui:
        raise ValueError(f"--link {spec}: want PATH=EUI64 (a link is bound to one enrolled "
                         "device by configuration)")  # fmt: skip
    if len(eui) != 16 or any(c not in "0123456789abcdef" for c in eui):
        raise ValueError(f"--link {spec}: EUI-64 must be 16 hex digits")
    return path, eui


def _is_announce(head: tuple | zcl.ZclError) -> bool:
    """A decoded frame header (or its decode error) is our DEVICE_ANNOUNCE."""
    if isinstance(head, zcl.ZclError):
        return False
    cmd, _zseq, s2c, mfr, _body = head
    return cmd == zcl.DEVICE_ANNOUNCE and mfr == zcl.MFR_HANOTA and not s2c
