"""ZCL OTA Upgrade cluster (0x0019), the client's half: what a device sends and receives.

All a board imports of the codec (its heap is 64 KB): the command ids, the encoders of what
a client sends, the decoders of what it receives and `decode_received`. The host's codec,
otaclient.zcl, re-exports this and adds the server's half and the table of every command.
Codec only: no state, no policy. Malformed input raises ZclError and nothing else.
"""

import struct

from micropython import const

from otaclient import record

CLUSTER_ID = const(0x0019)
MFR_HANOTA = const(0x1234)  # manufacturer code in the ZCL header of our commands (0xF0..)

# Command ids: otaclient.zcl.COMMANDS declares each once (tests/test_zcl.py checks)
IMAGE_NOTIFY = const(0x00)
QUERY_NEXT_IMAGE_REQ = const(0x01)
QUERY_NEXT_IMAGE_RSP = const(0x02)
IMAGE_BLOCK_REQ = const(0x03)
IMAGE_PAGE_REQ = const(0x04)
IMAGE_BLOCK_RSP = const(0x05)
UPGRADE_END_REQ = const(0x06)
UPGRADE_END_RSP = const(0x07)
DEFAULT_RSP = const(0x0B)  # profile-wide (frame type 0), never cluster-specific here
DEVICE_ANNOUNCE = const(0xF0)  # ours (MFR_HANOTA) from here on
ACTIVATION_ALERT = const(0xF1)
ALERT_ACK = const(0xF2)
LINK_SESSION = const(0xF3)  # the device's session nonce (otaclient.link)

SUCCESS = const(0x00)
FAILURE = const(0x01)
NOT_AUTHORIZED = const(0x7E)
MALFORMED_COMMAND = const(0x80)
UNSUP_CLUSTER_COMMAND = const(0x81)
UNSUP_GENERAL_COMMAND = const(0x82)
UNSUP_MANUF_CLUSTER_COMMAND = const(0x83)
ABORT = const(0x95)
INVALID_IMAGE = const(0x96)
WAIT_FOR_DATA = const(0x97)
NO_IMAGE_AVAILABLE = const(0x98)
REQUIRE_MORE_IMAGE = const(0x99)

_FC_CLUSTER = const(0x01)
_FC_MFR = const(0x04)
_FC_S2C = const(0x08)
_FC_NO_DEFAULT_RSP = const(0x10)

ALERT_CODE_ACTIVATION = const(0x8F8B)  # GBCS CS09-like "firmware activated" alert

BOOT_NORMAL = const(0)
BOOT_ACTIVATED = const(1)
BOOT_ROLLED_BACK = const(2)
BOOT_REFUSED = const(3)
RESULT_SUCCESS = const(0)
RESULT_FAILURE = const(1)
RESULT_REFUSED = const(2)
RESULT_DEFERRED = const(3)
SIGNATURE_LEN = const(64)

# What the client receives (server to client): plain tuples on a board (otaclient.record)
ImageNotify = record("ImageNotify", "payload_type jitter mfr image_type version")
QueryNextImageRsp = record("QueryNextImageRsp", "status mfr image_type version size")
# an offer (QueryNextImageRsp) read by index on a board; the device build folds these
Q_STATUS = const(0)
Q_MFR = const(1)
Q_TYPE = const(2)
Q_VERSION = const(3)
Q_SIZE = const(4)
ImageBlockRsp = record(
    "ImageBlockRsp",
    "status mfr image_type version offset data current_time request_time min_block_period",
)
UpgradeEndRsp = record("UpgradeEndRsp", "mfr image_type version current_time upgrade_time")
DefaultRsp = record("DefaultRsp", "cmd status")
AlertAck = record("AlertAck", "counter")


_LIMITS = {"B": 0xFF, "H": 0xFFFF, "I": 0xFFFFFFFF}


class ZclError(ValueError):
    """Malformed or unsupported ZCL input. .code is fixed; .status is the ZCL status to answer."""

    def __init__(self, code, status=MALFORMED_COMMAND):
        super().__init__(code)
        self.code = code
        self.status = status


def _unpack(fmt, buf, off=0, exact=True):
    # Bounds first, so struct never sees a short buffer; `exact` refuses trailing bytes.
    size = struct.calcsize(fmt)
    if len(buf) < off + size or (exact and len(buf) != off + size):
        raise ZclError("BAD_LENGTH")
    return struct.unpack_from(fmt, buf, off)


def _pack(fmt, *vals):
    # MicroPython's struct truncates out-of-range values silently: check ranges here.
    for v, c in zip(vals, fmt[1:]):
        if not isinstance(v, int) or not 0 <= v <= _LIMITS[c]:
            raise ZclError("BAD_FIELD")
    return struct.pack(fmt, *vals)


def _eui64(eui64):
    # an EUI-64 travels least significant byte first, as ZigBee sends it; `eui64` is the
    # identity's 8 bytes as displayed, most significant first (the same reversal reads one)
    if not isinstance(eui64, (bytes, bytearray)) or len(eui64) != 8:
        raise ZclError("BAD_EUI64")
    return bytes(reversed(eui64))


# --- frame header --------------------------------------------------------------------------


def encode_frame(cmd, seq, payload, server_to_client, mfr=None):
    """A whole ZCL frame, disable-default-response set. DEFAULT_RSP is sent profile-wide."""
    fc = _FC_NO_DEFAULT_RSP | (0 if cmd == DEFAULT_RSP else _FC_CLUSTER)
    fc |= _FC_S2C if server_to_client else 0
    if mfr is None:
        return _pack("<BBB", fc, seq, cmd) + bytes(payload)
    return _pack("<BHBB", fc | _FC_MFR, mfr, seq, cmd) + bytes(payload)


def decode_frame(buf):
    """(cmd, seq, server_to_client, mfr or None, payload: bytes, or a memoryview of a
    memoryview buf)."""
    if len(buf) < 3:
        raise ZclError("SHORT_FRAME")
    fc = buf[0]
    off = 1
    mfr = None
    if fc & _FC_MFR:
        (mfr,) = _unpack("<H", buf, 1, False)
        off = 3
    seq, cmd = _unpack("<BB", buf, off, False)
    kind = fc & 0x03
    if kind == 0 and cmd != DEFAULT_RSP:
        raise ZclError("UNSUP_GENERAL_COMMAND", UNSUP_GENERAL_COMMAND)
    if kind > 1 or (kind == 1 and cmd == DEFAULT_RSP and mfr is None):
        raise ZclError("BAD_FRAME_TYPE", UNSUP_CLUSTER_COMMAND)
    p = buf[off + 2 :]  # a memoryview stays one (no copy per frame on the device)
    return cmd, seq, bool(fc & _FC_S2C), mfr, p if isinstance(p, memoryview) else bytes(p)


# --- client to server ----------------------------------------------------------------------


def encode_query_next_image_req(mfr, image_type, version, hw_version=None):
    if hw_version is None:
        return _pack("<BHHI", 0, mfr, image_type, version)
    return _pack("<BHHIH", 1, mfr, image_type, version, hw_version)


def encode_image_block_req(
    mfr, image_type, version, offset, max_size, eui64=None, min_block_period=None
):
    fc = (0 if eui64 is None else 1) | (0 if min_block_period is None else 2)
    out = _pack("<BHHIIB", fc, mfr, image_type, version, offset, max_size)
    if eui64 is not None:
        out += _eui64(eui64)
    if min_block_period is not None:
        out += _pack("<H", min_block_period)
    return out


def encode_image_page_req(
    mfr, image_type, version, offset, max_size, page_size, spacing, eui64=None
):
    fc = 0 if eui64 is None else 1
    out = _pack("<BHHIIBHH", fc, mfr, image_type, version, offset, max_size, page_size, spacing)
    return out if eui64 is None else out + _eui64(eui64)


def encode_upgrade_end_req(status, mfr, image_type, version):
    return _pack("<BHHI", status, mfr, image_type, version)


def encode_default_rsp(cmd, status):
    return _pack("<BB", cmd, status)


def encode_device_announce(eui64, hw_version, version, boot_status):
    return _eui64(eui64) + _pack("<HIB", hw_version, version, boot_status)


def _supplier_bytes(supplier):
    if not isinstance(supplier, str) or not 1 <= len(supplier) <= 16:
        raise ZclError("BAD_SUPPLIER")
    raw = supplier.encode()
    if len(raw) != len(supplier) or min(raw) < 0x20 or max(raw) > 0x7E:
        raise ZclError("BAD_SUPPLIER")
    return raw


def encode_activation_alert(alert_code, supplier, version, result, timestamp, counter, signature):
    """The alert payload; with signature=None, the bytes before the signature (to sign)."""
    raw = _supplier_bytes(supplier)
    out = _pack("<HB", alert_code, len(raw)) + raw
    out += _pack("<IBII", version, result, timestamp, counter)
    if signature is None:
        return out
    if not isinstance(signature, (bytes, bytearray)) or len(signature) != SIGNATURE_LEN:
        raise ZclError("BAD_SIGNATURE")
    return out + bytes(signature)


def alert_signed_bytes(eui64, payload_without_signature):
    """What the device signs (ECDSA P-256/SHA-256): eui64 || alert payload before signature.

    The hub passes `payload[:-SIGNATURE_LEN]` of a received alert.
    """
    if not isinstance(eui64, (bytes, bytearray)) or len(eui64) != 8:
        raise ZclError("BAD_EUI64")
    return bytes(eui64) + bytes(payload_without_signature)


# --- server to client ----------------------------------------------------------------------


def decode_image_notify(p):
    if not p or p[0] > 3:
        raise ZclError("BAD_PAYLOAD_TYPE")
    vals = _unpack("<BBHHI"[: 3 + p[0]], p) + (None, None, None)
    if not 1 <= vals[1] <= 100:
        raise ZclError("BAD_JITTER")
    return ImageNotify(*vals[:5])


def decode_query_next_image_rsp(p):
    if p and p[0] != SUCCESS:
        return QueryNextImageRsp(*(_unpack("<B", p) + (None,) * 4))
    return QueryNextImageRsp(*_unpack("<BHHII", p))


def decode_image_block_rsp(p):
    if not p:
        raise ZclError("BAD_LENGTH")
    if p[0] == WAIT_FOR_DATA:
        return ImageBlockRsp(p[0], None, None, None, None, None, *_unpack("<xIIH", p))
    if p[0] != SUCCESS:
        _unpack("<B", p)
        return ImageBlockRsp(p[0], None, None, None, None, None, None, None, None)
    st, mfr, itype, ver, off, n = _unpack("<BHHIIB", p, 0, False)
    if len(p) != 14 + n:
        raise ZclError("BAD_LENGTH")
    data = p[14:]  # a memoryview stays one: the agent feeds it on before the next frame
    data = data if isinstance(data, memoryview) else bytes(data)
    return ImageBlockRsp(st, mfr, itype, ver, off, data, None, None, None)


def decode_upgrade_end_rsp(p):
    return UpgradeEndRsp(*_unpack("<HHIII", p))


def decode_default_rsp(p):
    return DefaultRsp(*_unpack("<BB", p))


def decode_alert_ack(p):
    return AlertAck(*_unpack("<I", p))


_S2C = {
    IMAGE_NOTIFY: decode_image_notify,
    QUERY_NEXT_IMAGE_RSP: decode_query_next_image_rsp,
    IMAGE_BLOCK_RSP: decode_image_block_rsp,
    UPGRADE_END_RSP: decode_upgrade_end_rsp,
}


def decode_received(cmd, payload, server_to_client, mfr=None):
    """The record of a command a client receives; ZclError with the status to answer.

    A client receives only server-to-client commands and Default Response (the host's
    otaclient.zcl.decode_command decodes every command, both ways, from its table).
    """
    if mfr is not None:
        if mfr != MFR_HANOTA or cmd != ALERT_ACK or not server_to_client:
            raise ZclError("UNSUP_MANUF_CLUSTER_COMMAND", UNSUP_MANUF_CLUSTER_COMMAND)
        return decode_alert_ack(payload)
    if cmd == DEFAULT_RSP:
        return decode_default_rsp(payload)
    dec = _S2C.get(cmd) if server_to_client else None
    if dec is None:
        raise ZclError("UNSUP_CLUSTER_COMMAND", UNSUP_CLUSTER_COMMAND)
    return dec(payload)
