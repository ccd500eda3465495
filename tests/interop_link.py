"""The serial link as docs/link-protocol.md describes it, written again from the document
for the interop suite: framing (header, truncated CRC-32, COBS, delimiter), the CH link
key's sealing (HMAC-SHA-256-128 with Python's hmac) and our manufacturer-specific
payloads (Device Announce, Link Session, Activation Alert, Alert Ack), both directions.

It deliberately imports nothing from `otaclient` or `hanota`: it is the independent second
implementation the board (and the hub) are checked against. It builds and reads bytes
only; the ZCL header and every standard OTA command are zigpy's (tests/interop_ch.py).
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import struct
from typing import NamedTuple

MAX_PAYLOAD = 320  # one ZCL frame (sealed or not) per link frame
_MAX_BODY = MAX_PAYLOAD + 7  # header 5 + CRC 2
_MAX_WIRE = 331  # the most bytes a receiver takes before a delimiter
SEC_LEN = 20  # counter u32 + 16-byte MIC after a sealed ZCL frame
NONCE_LEN = 8

MFR_HANOTA = 0x1234  # our manufacturer code (frame control 0x15 / 0x1D)
DEVICE_ANNOUNCE = 0xF0
ACTIVATION_ALERT = 0xF1
ALERT_ACK = 0xF2
LINK_SESSION = 0xF3
ALERT_CODE = 0x8F8B
SIGNATURE_LEN = 64


class Frame(NamedTuple):
    src: int
    dst: int
    seq: int
    payload: bytes


# --- framing -----------------------------------------------------------------------------


def crc(body: bytes) -> int:
    """Low 16 bits of the zlib CRC-32 of the header and payload."""
    return binascii.crc32(body) & 0xFFFF


def cobs_encode(data: bytes) -> bytes:
    """One code byte per run of non-zero bytes (its length + 1; 0xFF: 254 bytes and no
    implied zero); the implied zero after the last run is dropped."""
    out = bytearray()
    run = bytearray()
    for b in data:
        if b:
            run.append(b)
            if len(run) == 254:
                out += bytes([0xFF]) + run
                run.clear()
        else:
            out += bytes([len(run) + 1]) + run
            run.clear()
    out += bytes([len(run) + 1]) + run
    return bytes(out)


def cobs_decode(data: bytes) -> bytes | None:
    """The unstuffed bytes, or None when a code runs past the end or a zero is inside."""
    out = bytearray()
    i = 0
    while i < len(data):
        code = data[i]
        if code == 0 or i + code > len(data):
            return None
        out += data[i + 1 : i + code]
        i += code
        if code != 0xFF and i < len(data):
            out.append(0)
    return bytes(out)


def encode(src: int, dst: int, seq: int, payload: bytes) -> bytes:
    """A whole wire frame: COBS(src u16, dst u16, seq u8, payload, crc u16) + 0x00."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    body = struct.pack("<HHB", src, dst, seq) + bytes(payload)
    body += struct.pack("<H", crc(body))
    return cobs_encode(body) + b"\x00"


class Decoder:
    """Wire bytes in any chunking -> good frames; bad ones are counted in `errors`."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.errors = {"short": 0, "crc": 0, "oversize": 0}
        self.frames = 0

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        out = []
        while True:
            end = self._buf.find(0)
            if end < 0:
                if len(self._buf) > _MAX_WIRE:  # no delimiter in sight: drop what came
                    self.errors["oversize"] += 1
                    self._buf.clear()
                return out
            wire = bytes(self._buf[:end])
            del self._buf[: end + 1]
            if not wire:
                continue  # a lone delimiter: a flush
            frame = self._frame(wire)
            if frame is not None:
                self.frames += 1
                out.append(frame)

    def _frame(self, wire: bytes) -> Frame | None:
        if len(wire) > _MAX_WIRE:
            self.errors["oversize"] += 1
            return None
        body = cobs_decode(wire)
        if body is None or len(body) < 7:
            self.errors["short"] += 1
            return None
        if len(body) > _MAX_BODY:
            self.errors["oversize"] += 1
            return None
        if struct.unpack_from("<H", body, len(body) - 2)[0] != crc(body[:-2]):
            self.errors["crc"] += 1
            return None
        src, dst, seq = struct.unpack_from("<HHB", body)
        return Frame(src, dst, seq, body[5:-2])


# --- sealing (section 1.1) ---------------------------------------------------------------


def mic(key: bytes, nonce: bytes, src: int, dst: int, counter: int, zcl: bytes) -> bytes:
    """First 16 bytes of HMAC-SHA-256(key, nonce | src u16 | dst u16 | counter u32 | zcl)."""
    msg = bytes(nonce) + struct.pack("<HHI", src, dst, counter) + bytes(zcl)
    return hmac.new(key, msg, hashlib.sha256).digest()[:16]


def seal(key: bytes, nonce: bytes, src: int, dst: int, counter: int, zcl: bytes) -> bytes:
    """The link payload of a sealed command: zcl | counter u32 | MIC."""
    if not 1 <= counter <= 0xFFFFFFFF:
        raise ValueError("a sealed frame's counter is 1..0xFFFFFFFF")
    return bytes(zcl) + struct.pack("<I", counter) + mic(key, nonce, src, dst, counter, zcl)


def unseal(key: bytes, nonce: bytes, src: int, dst: int, payload: bytes) -> tuple[int, bytes]:
    """(counter, zcl frame) of a sealed payload; ValueError if it is short or its MIC fails."""
    if len(payload) < SEC_LEN:
        raise ValueError("shorter than a seal")
    zcl, counter, tag = payload[:-SEC_LEN], *struct.unpack_from("<I16s", payload, len(payload) - 20)
    if not hmac.compare_digest(tag, mic(key, nonce, src, dst, counter, zcl)):
        raise ValueError("bad MIC")
    return counter, bytes(zcl)


# --- manufacturer-specific payloads (section 2, "ours") ---------------------------------
# EUI-64s are given as the identity's bytes in display order (most significant first) and
# travel least significant byte first; the alert signature's input keeps display order.


class DeviceAnnounce(NamedTuple):
    eui64: bytes  # display order
    hw_version: int
    version: int
    boot_status: int  # 0 normal, 1 activated, 2 rolled back, 3 refused by consent


class ActivationAlert(NamedTuple):
    alert_code: int
    supplier: str
    version: int
    result: int  # 0 success, 1 failure, 2 refused, 3 deferred
    timestamp: int
    counter: int
    signature: bytes


def device_announce(a: DeviceAnnounce) -> bytes:
    return a.eui64[::-1] + struct.pack("<HIB", a.hw_version, a.version, a.boot_status)


def parse_device_announce(p: bytes) -> DeviceAnnounce:
    raw, hw, version, boot = struct.unpack("<8sHIB", p)  # struct.error on a wrong length
    return DeviceAnnounce(raw[::-1], hw, version, boot)


def link_session(nonce: bytes) -> bytes:
    if len(nonce) != NONCE_LEN:
        raise ValueError("a nonce is 8 bytes")
    return bytes(nonce)


def parse_link_session(p: bytes) -> bytes:
    if len(p) != NONCE_LEN:
        raise ValueError(f"Link Session payload of {len(p)} bytes, not 8")
    return bytes(p)


def activation_alert(a: ActivationAlert) -> bytes:
    """The alert's payload; with an empty signature, the bytes before it (to be signed)."""
    name = a.supplier.encode("ascii")
    head = struct.pack("<HB", a.alert_code, len(name)) + name
    return head + struct.pack("<IBII", a.version, a.result, a.timestamp, a.counter) + a.signature


def parse_activation_alert(p: bytes) -> ActivationAlert:
    code, n = struct.unpack_from("<HB", p)
    name = p[3 : 3 + n]
    if not 1 <= n <= 16 or len(name) != n or any(not 0x20 <= c <= 0x7E for c in name):
        raise ValueError("bad supplier field")
    version, result, ts, counter, sig = struct.unpack(f"<IBII{SIGNATURE_LEN}s", p[3 + n :])
    return ActivationAlert(code, name.decode(), version, result, ts, counter, sig)


def alert_signed_bytes(eui64: bytes, payload: bytes) -> bytes:
    """What the device signs (ECDSA P-256, SHA-256): eui64 in display order, then the
    alert's payload without its signature."""
    return bytes(eui64) + bytes(payload[:-SIGNATURE_LEN])


def alert_ack(counter: int) -> bytes:
    return struct.pack("<I", counter)


def parse_alert_ack(p: bytes) -> int:
    (counter,) = struct.unpack("<I", p)
    return counter
