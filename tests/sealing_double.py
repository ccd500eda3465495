# ruff: noqa: UP031  (runs under MicroPython too: %-formatting, no f-strings)
"""The CH double with the CH link key: it seals every frame but Image Block Responses
with the device's session nonce, as the hub does (docs/link-protocol.md, section 1.1).

Runs under CPython and MicroPython; only the link security differs from OtaDouble.
"""

from ota_double import OtaDouble
from otaclient import link, zcl

KEY = bytes(range(0xA0, 0xB0))  # the tests' CH link key (identity.json "link_key")


class SealingDouble(OtaDouble):
    def __init__(self, files, key=KEY, **kw):
        super().__init__(files, **kw)
        self.pads = link.pads(key)
        self.nonce = None  # the device's session nonce, from its last LINK_SESSION
        self.counter = 0
        self.sessions = 0
        self.sealed = []  # (cmd, link frame) of every sealed frame sent, for replays

    def handle(self, cmd, o):
        if cmd == zcl.LINK_SESSION:
            if o[0] != self.nonce:
                self.nonce, self.counter = o[0], 0
            self.sessions += 1
            return None
        return super().handle(cmd, o)

    def seal(self, cmd, z, dst=None):
        """A ZCL frame `z` as the payload the CH sends: sealed unless a block response or
        no session is known yet."""
        if cmd == zcl.IMAGE_BLOCK_RSP or self.nonce is None:
            return z
        self.counter += 1
        dst = self.dev if dst is None else dst
        return link.seal(self.pads, self.nonce, self.addr, dst, self.counter, z)

    def frame(self, cmd, payload, mfr=None, seq=None):
        self._seq = (self._seq + 1) & 0xFF
        z = zcl.encode_frame(cmd, self._seq if seq is None else seq, payload, True, mfr)
        f = link.encode(self.addr, self.dev, self._seq, self.seal(cmd, z))
        if cmd != zcl.IMAGE_BLOCK_RSP:
            self.sealed.append((cmd, f))
        return f

    def notify(self, dst=None):
        p = zcl.encode_image_notify(0, 100)
        z = zcl.encode_frame(zcl.IMAGE_NOTIFY, 0, p, True)
        dst = self.dev if dst is None else dst
        return link.encode(self.addr, dst, 0, self.seal(zcl.IMAGE_NOTIFY, z, dst))
