# ruff: noqa: UP031  (runs under MicroPython too: %-formatting, no f-strings)
"""A scripted test double of the Comms Hub's OTA server: link frames in, link frames out.

Serves a list of OTA files in order (REQUIRE_MORE_IMAGE / INVALID_IMAGE move to the
next), with fault hooks. Not the hub emulator: no inventory, no timing rules of its own.
Runs under CPython and MicroPython; files may be bytes or paths (read per block).
"""

import struct

from otaclient import link, zcl
from otaclient.image import p256_call  # as the agent does: P-256 not held between uses

_HDR = "<HHI"  # manufacturer code, image type, file version at offset 10 of the header


class _File:
    def __init__(self, src):
        if isinstance(src, str):
            self.f = open(src, "rb")
            self.f.seek(0, 2)
            self.size = self.f.tell()
            self.data = None
        else:
            self.data = bytes(src)
            self.size = len(src)
        self.mfr, self.type, self.version = struct.unpack(_HDR, self.read(10, 8))

    def read(self, off, n):
        if self.data is not None:
            return self.data[off : off + n]
        self.f.seek(off)
        return self.f.read(n)


class OtaDouble:
    def __init__(self, files, addr=0, dev_addr=1, upgrade_time=0, current_time=0):
        self.files = [_File(f) for f in files]
        self.addr = addr  # this server's short address as seen by the device
        self.dev = dev_addr
        self.idx = 0  # the file offered next
        self.upgrade_time = upgrade_time
        self.clock = None  # the board's virtual clock (ms), when the harness wires one
        self.current_time = current_time
        self.events = []  # ("query", ver) ("end", status, ver) ("announce", ver, boot) ...
        self.alerts = []  # decoded ActivationAlert
        self.device_pub = None  # verify alert signatures when set (64 bytes)
        self.eui64 = None
        self.pages = True  # answer Image Page Requests (else Default Response UNSUP)
        self.block_cap = 255  # the largest block this server sends, whatever is asked
        self.drop = None  # drop(offset) -> True: lose that block response
        self.wait_for_data = 0  # answer the next N block/page requests WAIT_FOR_DATA
        self.wait = (0, 0, 0)  # current_time, request_time, min_block_period of those
        self.abort_at = None  # answer abort_status to a request at/after this offset (once)
        self.abort_status = zcl.ABORT  # or NO_IMAGE_AVAILABLE: the CH discarded the image (R5)
        self.ack_alerts = True
        self.reoffer = True  # offer the files again to a device still on an older version
        self.blocks = 0
        self.block_reqs = 0  # Image Block Requests received
        self.bytes = 0
        self._dec = link.Decoder()
        self._seq = 0
        self.ended = None  # the file whose Upgrade End Request SUCCESS was answered

    def __call__(self, data):
        self._dec.feed(data)
        out = []
        while True:
            f = self._dec.next()
            if f is None:
                return out  # a list of frames (no big joined buffer on a 64 KB heap)
            src, dst, _s, payload = f
            cmd, seq, _s2c, mfr, p = zcl.decode_frame(payload)
            obj = zcl.decode_command(cmd, p, False, mfr)
            for cmd2, p2, mfr2 in self.handle(cmd, obj) or ():
                out.append(self.frame(cmd2, p2, mfr2, seq))

    def frame(self, cmd, payload, mfr=None, seq=None):
        self._seq = (self._seq + 1) & 0xFF
        z = zcl.encode_frame(cmd, self._seq if seq is None else seq, payload, True, mfr)
        return link.encode(self.addr, self.dev, self._seq, z)

    def notify(self, dst=None):
        """Frame bytes of a unicast (or broadcast with dst=0xFFFF) Image Notify type 0."""
        p = zcl.encode_image_notify(0, 100)
        z = zcl.encode_frame(zcl.IMAGE_NOTIFY, 0, p, True)
        return link.encode(self.addr, self.dev if dst is None else dst, 0, z)

    def current(self):
        return self.files[self.idx] if self.idx < len(self.files) else None

    def handle(self, cmd, o):
        if cmd == zcl.QUERY_NEXT_IMAGE_REQ:
            self.events.append(("query", o.version))
            f = self.current()
            if f is None and self.reoffer and self.files and o.version < self.files[0].version:
                self.idx = 0
                f = self.current()
            if f is None:
                return [(zcl.QUERY_NEXT_IMAGE_RSP, zcl.encode_query_next_image_rsp(0x98), None)]
            p = zcl.encode_query_next_image_rsp(0, f.mfr, f.type, f.version, f.size)
            return [(zcl.QUERY_NEXT_IMAGE_RSP, p, None)]
        if cmd == zcl.IMAGE_BLOCK_REQ:
            self.block_reqs += 1
            n = min(o.max_size, self.block_cap)
            return self._blocks(o.offset, n, n)
        if cmd == zcl.IMAGE_PAGE_REQ:
            if not self.pages:
                p = zcl.encode_default_rsp(cmd, zcl.UNSUP_CLUSTER_COMMAND)
                return [(zcl.DEFAULT_RSP, p, None)]
            return self._blocks(o.offset, min(o.max_size, self.block_cap), o.page_size)
        if cmd == zcl.UPGRADE_END_REQ:
            return self._end(o)
        if cmd == zcl.DEVICE_ANNOUNCE:
            self.events.append(("announce", o.version, o.boot_status))
            return None
        if cmd == zcl.ACTIVATION_ALERT:
            return self._alert(o)
        self.events.append(("other", cmd))
        return None

    def _blocks(self, offset, max_size, span):
        f = self.current()
        if f is None:
            return [(zcl.IMAGE_BLOCK_RSP, zcl.encode_image_block_rsp(zcl.ABORT), None)]
        if self.wait_for_data:
            self.wait_for_data -= 1
            p = zcl.encode_image_block_rsp(
                zcl.WAIT_FOR_DATA, None, None, None, None, None, *self.wait
            )
            return [(zcl.IMAGE_BLOCK_RSP, p, None)]
        if self.abort_at is not None and offset >= self.abort_at:
            self.abort_at = None
            p = zcl.encode_image_block_rsp(self.abort_status)
            return [(zcl.IMAGE_BLOCK_RSP, p, None)]
        out = []
        end = min(offset + span, f.size)
        while offset < end:
            n = min(max_size, end - offset)
            if not (self.drop and self.drop(offset)):
                data = f.read(offset, n)
                p = zcl.encode_image_block_rsp(0, f.mfr, f.type, f.version, offset, data)
                out.append((zcl.IMAGE_BLOCK_RSP, p, None))
                self.blocks += 1
                self.bytes += n
            offset += n
        return out

    @property
    def current_time(self):
        """The CH's clock (ZigBee s): as last set, run on with the virtual clock; 0 stays 0
        (upgrade times are then delays)."""
        if not self._cur or self.clock is None:
            return self._cur
        return self._cur + int(self.clock() - self._cur_t0) // 1000

    @current_time.setter
    def current_time(self, t):
        self._cur = t
        self._cur_t0 = self.clock() if self.clock is not None else 0

    def _end(self, o):
        self.events.append(("end", o.status, o.version))
        f = self.current()
        ended = self.ended
        again = ended is not None and o.version == ended.version
        if (f is None or o.version != f.version) and not again:
            return None
        if not again:
            self.idx += 1  # any status: the next file (SUCCESS: normally the last one)
        else:
            f = ended  # a re-sent request for the image it ended: answered again
        if o.status == zcl.SUCCESS:
            self.ended = f
            t = zcl.encode_upgrade_end_rsp(
                f.mfr, f.type, f.version, self.current_time, self.upgrade_time
            )
            return [(zcl.UPGRADE_END_RSP, t, None)]
        return None

    def _alert(self, a):
        ok = None
        if self.device_pub is not None:
            body = zcl.encode_activation_alert(
                a.alert_code, a.supplier, a.version, a.result, a.timestamp, a.counter, None
            )
            msg = zcl.alert_signed_bytes(self.eui64, body)
            import hashlib

            ok = p256_call("verify", self.device_pub, hashlib.sha256(msg).digest(), a.signature)
        self.alerts.append((a, ok))
        if self.ack_alerts:
            return [(zcl.ALERT_ACK, zcl.encode_alert_ack(a.counter), zcl.MFR_HANOTA)]
        return None
