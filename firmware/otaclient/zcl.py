"""ZCL OTA Upgrade cluster (0x0019): frame header and every standard command, both ways.

Codec only: no state, no policy. Our manufacturer-specific commands are in zcl_mfr and
re-exported here. Malformed input raises ZclError and nothing else.
"""

import struct
from collections import namedtuple

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


CLUSTER_ID = const(0x0019)

IMAGE_NOTIFY = const(0x00)
QUERY_NEXT_IMAGE_REQ = const(0x01)
QUERY_NEXT_IMAGE_RSP = const(0x02)
IMAGE_BLOCK_REQ = const(0x03)
IMAGE_PAGE_REQ = const(0x04)
IMAGE_BLOCK_RSP = const(0x05)
UPGRADE_END_REQ = const(0x06)
UPGRADE_END_RSP = const(0x07)
DEFAULT_RSP = const(0x0B)  # profile-wide (frame type 0), never cluster-specific here

SUCCESS = const(0x00)
FAILURE = const(0x01)
NOT_AUTHORIZED = const(0x7E)
MALFORMED_COMMAND = const(0x80)
UNSUP_CLUSTER_COMMAND = const(0x81)
UNSUP_GENERAL_COMMAND = const(0x82)
ABORT = const(0x95)
INVALID_IMAGE = const(0x96)
WAIT_FOR_DATA = const(0x97)
NO_IMAGE_AVAILABLE = const(0x98)
REQUIRE_MORE_IMAGE = const(0x99)

_FC_CLUSTER = const(0x01)
_FC_MFR = const(0x04)
_FC_S2C = const(0x08)
_FC_NO_DEFAULT_RSP = const(0x10)

ImageNotify = namedtuple("ImageNotify", "payload_type jitter mfr image_type version")
QueryNextImageReq = namedtuple(
    "QueryNextImageReq", "field_control mfr image_type version hw_version"
)
QueryNextImageRsp = namedtuple("QueryNextImageRsp", "status mfr image_type version size")
ImageBlockReq = namedtuple(
    "ImageBlockReq", "field_control mfr image_type version offset max_size eui64 min_block_period"
)
ImagePageReq = namedtuple(
    "ImagePageReq", "field_control mfr image_type version offset max_size page_size spacing eui64"
)
ImageBlockRsp = namedtuple(
    "ImageBlockRsp",
    "status mfr image_type version offset data current_time request_time min_block_period",
)
UpgradeEndReq = namedtuple("UpgradeEndReq", "status mfr image_type version")
UpgradeEndRsp = namedtuple("UpgradeEndRsp", "mfr image_type version current_time upgrade_time")
DefaultRsp = namedtuple("DefaultRsp", "cmd status")


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
    if eui64 is None or len(eui64) != 8:
        raise ZclError("BAD_EUI64")
    return bytes(eui64)


# --- frame header --------------------------------------------------------------------------


def encode_frame(cmd, seq, payload, server_to_client, mfr=None):
    """A whole ZCL frame, disable-default-response set. DEFAULT_RSP is sent profile-wide."""
    fc = _FC_NO_DEFAULT_RSP | (0 if cmd == DEFAULT_RSP else _FC_CLUSTER)
    fc |= _FC_S2C if server_to_client else 0
    if mfr is None:
        return _pack("<BBB", fc, seq, cmd) + bytes(payload)
    return _pack("<BHBB", fc | _FC_MFR, mfr, seq, cmd) + bytes(payload)


def decode_frame(buf):
    """(cmd, seq, server_to_client, mfr or None, payload bytes)."""
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
    return cmd, seq, bool(fc & _FC_S2C), mfr, bytes(buf[off + 2 :])


# --- Image Notify (0x00) -------------------------------------------------------------------


def encode_image_notify(payload_type, jitter, mfr=None, image_type=None, version=None):
    fields = (mfr, image_type, version)
    if not 0 <= payload_type <= 3 or not 1 <= jitter <= 100:
        raise ZclError("BAD_FIELD")
    if None in fields[:payload_type]:
        raise ZclError("BAD_FIELD")
    fmt = "<BBHHI"[: 3 + payload_type]
    return _pack(fmt, payload_type, jitter, *fields[:payload_type])


def decode_image_notify(p):
    if not p or p[0] > 3:
        raise ZclError("BAD_PAYLOAD_TYPE")
    vals = _unpack("<BBHHI"[: 3 + p[0]], p) + (None, None, None)
    if not 1 <= vals[1] <= 100:
        raise ZclError("BAD_JITTER")
    return ImageNotify(*vals[:5])


# --- Query Next Image (0x01, 0x02) ---------------------------------------------------------


def encode_query_next_image_req(mfr, image_type, version, hw_version=None):
    if hw_version is None:
        return _pack("<BHHI", 0, mfr, image_type, version)
    return _pack("<BHHIH", 1, mfr, image_type, version, hw_version)


def decode_query_next_image_req(p):
    if not p or p[0] > 1:
        raise ZclError("BAD_FIELD_CONTROL")
    if p[0]:
        return QueryNextImageReq(*_unpack("<BHHIH", p))
    return QueryNextImageReq(*(_unpack("<BHHI", p) + (None,)))


def encode_query_next_image_rsp(status, mfr=None, image_type=None, version=None, size=None):
    if status != SUCCESS:
        return _pack("<B", status)
    return _pack("<BHHII", status, mfr, image_type, version, size)


def decode_query_next_image_rsp(p):
    if p and p[0] != SUCCESS:
        return QueryNextImageRsp(*(_unpack("<B", p) + (None,) * 4))
    return QueryNextImageRsp(*_unpack("<BHHII", p))


# --- Image Block / Page Request (0x03, 0x04) -----------------------------------------------


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


def decode_image_block_req(p):
    head = _unpack("<BHHIIB", p, 0, False)
    fc = head[0]
    if fc > 3:
        raise ZclError("BAD_FIELD_CONTROL")
    tail = _unpack(("<", "<8s", "<H", "<8sH")[fc], p, 14)
    eui64 = tail[0] if fc & 1 else None
    return ImageBlockReq(*(head + (eui64, tail[-1] if fc & 2 else None)))


def encode_image_page_req(
    mfr, image_type, version, offset, max_size, page_size, spacing, eui64=None
):
    fc = 0 if eui64 is None else 1
    out = _pack("<BHHIIBHH", fc, mfr, image_type, version, offset, max_size, page_size, spacing)
    return out if eui64 is None else out + _eui64(eui64)


def decode_image_page_req(p):
    head = _unpack("<BHHIIBHH", p, 0, False)
    if head[0] > 1:
        raise ZclError("BAD_FIELD_CONTROL")
    tail = _unpack(("<", "<8s")[head[0]], p, 18)
    return ImagePageReq(*(head + ((tail[0] if head[0] else None),)))


# --- Image Block Response (0x05) -----------------------------------------------------------


def encode_image_block_rsp(
    status,
    mfr=None,
    image_type=None,
    version=None,
    offset=None,
    data=None,
    current_time=None,
    request_time=None,
    min_block_period=None,
):
    if status == SUCCESS:
        if len(data) > 255:
            raise ZclError("BAD_FIELD")
        head = _pack("<BHHIIB", status, mfr, image_type, version, offset, len(data))
        return head + bytes(data)
    if status == WAIT_FOR_DATA:
        return _pack("<BIIH", status, current_time, request_time, min_block_period)
    return _pack("<B", status)


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
    return ImageBlockRsp(st, mfr, itype, ver, off, bytes(p[14:]), None, None, None)


# --- Upgrade End (0x06, 0x07), Default Response (0x0B) ------------------------------------


def encode_upgrade_end_req(status, mfr, image_type, version):
    return _pack("<BHHI", status, mfr, image_type, version)


def decode_upgrade_end_req(p):
    return UpgradeEndReq(*_unpack("<BHHI", p))


def encode_upgrade_end_rsp(mfr, image_type, version, current_time, upgrade_time):
    return _pack("<HHIII", mfr, image_type, version, current_time, upgrade_time)


def decode_upgrade_end_rsp(p):
    return UpgradeEndRsp(*_unpack("<HHIII", p))


def encode_default_rsp(cmd, status):
    return _pack("<BB", cmd, status)


def decode_default_rsp(p):
    return DefaultRsp(*_unpack("<BB", p))


from otaclient.zcl_mfr import *  # noqa: E402, F403  (re-export: one namespace for callers)
