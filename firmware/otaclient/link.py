"""Serial link framing: COBS-stuffed frames with addresses, a sequence number and a CRC;
and the CH's link security (a per-device key, a session nonce, a counter and a MIC).

No I/O, no retransmission and no policy: the caller reads and writes bytes, ZCL above
retries, and the agent decides which frames must be sealed (docs/link-protocol.md).
Frame: COBS(src u16, dst u16, seq u8, payload, crc16) then 0x00.
"""

import struct
from binascii import crc32
from hashlib import sha256

from micropython import const

from otaclient import Error as LinkError  # encode()'s refusals; .code is fixed

MAX_PAYLOAD = const(320)  # a 255-byte block response is 272 bytes of ZCL
HEADER_LEN = const(5)  # src u16, dst u16, seq u8
CRC_LEN = const(2)  # low 16 bits of CRC-32 (IEEE), little-endian
OVERHEAD = const(10)  # worst case at MAX_PAYLOAD: header + crc + 2 COBS codes + delimiter
DELIMITER = b"\x00"
_BODY_MAX = const(327)  # HEADER_LEN + MAX_PAYLOAD + CRC_LEN
_ENC_MAX = const(331)  # _BODY_MAX + COBS codes (at most 3) + slack
_BODY_MIN = const(7)  # HEADER_LEN + CRC_LEN: an empty payload
_RUN = const(254)  # longest run of non-zero bytes behind one COBS code
KEY_LEN = const(16)  # the CH link key (as a ZigBee APS link key: 128 bits)
NONCE_LEN = const(8)  # the device's session nonce, fresh at every boot and renewal
MIC_LEN = const(16)  # HMAC-SHA-256 truncated to 128 bits (HMAC-SHA-256-128, RFC 4868)
SEC_LEN = const(20)  # what sealing adds to a payload: counter u32 + MIC


def _crc16(data):
    return crc32(data) & 0xFFFF


def _stuff(body):
    # COBS: one code byte per zero-separated run (and per 254 non-zero bytes).
    out = bytearray()
    parts = body.split(b"\x00")
    last = len(parts) - 1
    for i, part in enumerate(parts):
        while len(part) >= _RUN:
            out.append(0xFF)
            out.extend(part[:_RUN])
            part = part[_RUN:]
            if not part and i == last:
                return out
        out.append(len(part) + 1)
        out.extend(part)
    return out


def encode(src, dst, seq, payload):
    """One complete frame, trailing delimiter included."""
    if len(payload) > MAX_PAYLOAD:
        raise LinkError("OVERSIZE")
    if not (0 <= src <= 0xFFFF and 0 <= dst <= 0xFFFF and 0 <= seq <= 0xFF):
        raise LinkError("BAD_FIELD")
    body = bytearray(struct.pack("<HHB", src, dst, seq))
    body.extend(payload)
    body.extend(struct.pack("<H", _crc16(body)))
    out = _stuff(bytes(body))
    out.append(0)
    return bytes(out)


def pads(key):
    """HMAC's (inner, outer) key blocks for a KEY_LEN-byte link key (SHA-256 objects cannot
    be copied on MicroPython: each MIC hashes these). The agent makes them per sealed
    frame rather than hold 2 x 64 bytes; a host may keep them."""
    if len(key) != KEY_LEN:
        raise LinkError("BAD_KEY")
    k = bytes(key) + bytes(64 - KEY_LEN)
    return bytes(b ^ 0x36 for b in k), bytes(b ^ 0x5C for b in k)


def _mic(pads, nonce, src, dst, counter, frame):
    # HMAC-SHA-256(key, nonce || src || dst || counter || frame)[:MIC_LEN] (RFC 2104)
    h = sha256(pads[0])
    h.update(nonce)
    h.update(struct.pack("<HHI", src, dst, counter))
    h.update(frame)
    o = sha256(pads[1])
    o.update(h.digest())
    return o.digest()


def seal(pads, nonce, src, dst, counter, frame):
    """The payload of a sealed frame: frame || counter u32 || MIC."""
    if not 0 < counter <= 0xFFFFFFFF:
        raise LinkError("BAD_FIELD")
    return (
        bytes(frame)
        + struct.pack("<I", counter)
        + _mic(pads, nonce, src, dst, counter, frame)[:MIC_LEN]
    )


def unseal(pads, nonce, src, dst, payload):
    """The counter of a sealed payload whose MIC holds, else -1. The frame is
    payload[:-SEC_LEN]; the caller checks the counter is new."""
    n = len(payload) - SEC_LEN
    if n < 0:
        return -1
    (counter,) = struct.unpack_from("<I", payload, n)
    m = _mic(pads, nonce, src, dst, counter, payload[:n])
    d = 0
    for i in range(MIC_LEN):  # every byte, whatever the first difference (no early exit)
        d |= m[i] ^ payload[n + 4 + i]
    return -1 if d else counter


class Decoder:
    """Feed bytes in any chunking; next() yields frames. Bad frames are counted, dropped."""

    def __init__(self):
        self._acc = bytearray(_ENC_MAX)  # a frame split across feed() calls
        self._acc_n = 0
        self._skip = False  # oversize frame: drop bytes until the next delimiter
        self._body = bytearray(_BODY_MAX)
        self._body_mv = memoryview(self._body)
        self._pend = b""
        self._pos = 0
        self._end = 0
        self.errors = {"crc": 0, "oversize": 0, "short": 0}
        self.frames = 0

    def feed(self, data, n=-1):
        """Queue data[:n] (all of it when n < 0); call next() until None before reusing data.

        A bytes/bytearray is referenced, not copied: feed(buf, n) after readinto(buf)
        allocates nothing.
        """
        if n < 0 or n > len(data):
            n = len(data)  # never trust a count beyond the buffer
        if self._pos < self._end:  # fed twice without draining: keep both
            data = bytes(self._pend[self._pos : self._end]) + bytes(data[:n])
            n = len(data)
        elif not isinstance(data, (bytes, bytearray)):
            data = bytes(data[:n])
        self._pend = data
        self._pos = 0
        self._end = n

    def next(self, view=False):
        """(src, dst, seq, payload) of the next good frame, or None when input runs out.
        With view, payload is a memoryview into the decoder, valid until the next call
        (the agent's way: no copy per frame); else bytes of its own."""
        while True:
            pend = self._pend
            pos = self._pos
            end = pend.find(DELIMITER, pos, self._end)
            if end < 0:
                self._keep(pend, pos, self._end)
                self._pend = b""
                self._pos = self._end = 0
                return None
            self._pos = end + 1
            f = self._frame(pend, pos, end)
            if f is not None:
                return f if view else (f[0], f[1], f[2], bytes(f[3]))

    def _keep(self, pend, start, end):
        # Hold an incomplete frame in the fixed buffer until its delimiter comes.
        n = self._acc_n + end - start
        if self._skip or n > _ENC_MAX:
            self._skip = True
            return
        self._acc[self._acc_n : n] = memoryview(pend)[start:end]
        self._acc_n = n

    def _frame(self, pend, start, end):
        if self._skip or self._acc_n:
            self._keep(pend, start, end)
            skip, n = self._skip, self._acc_n
            self._skip = False
            self._acc_n = 0
            if skip:
                self.errors["oversize"] += 1
                return None
            return self._decode(memoryview(self._acc), n)
        if end == start:
            return None  # idle delimiter: a flush, not an error
        if end - start > _ENC_MAX:
            self.errors["oversize"] += 1
            return None
        return self._decode(memoryview(pend)[start:end], end - start)

    def _decode(self, enc, n):
        j = self._unstuff(enc, n)
        if j < 0:
            return None
        body = self._body_mv
        crc = body[j - 2] | (body[j - 1] << 8)
        if _crc16(body[: j - 2]) != crc:
            self.errors["crc"] += 1
            return None
        src, dst, seq = struct.unpack_from("<HHB", self._body, 0)
        self.frames += 1
        return src, dst, seq, body[HEADER_LEN : j - 2]

    def _unstuff(self, enc, n):
        # One iteration per COBS code (a run of non-zero bytes), never per byte.
        out = self._body
        i = 0
        j = 0
        while i < n:
            c = enc[i]
            k = i + c
            m = c - 1
            if k > n:
                self.errors["short"] += 1
                return -1
            if j + m > _BODY_MAX:
                self.errors["oversize"] += 1
                return -1
            out[j : j + m] = enc[i + 1 : k]
            j += m
            i = k
            if c != 0xFF and i < n:
                if j >= _BODY_MAX:
                    self.errors["oversize"] += 1
                    return -1
                out[j] = 0
                j += 1
        if j < _BODY_MIN:
            self.errors["short"] += 1
            return -1
        return j
