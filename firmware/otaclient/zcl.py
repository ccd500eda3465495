"""ZCL OTA Upgrade cluster (0x0019): every standard command, both ways (host and doubles).

The client's half (frame header, what a device sends and receives) is otaclient.zcl_client,
which the device imports alone and this module re-exports; here is the server's half and,
through zcl_mfr, our manufacturer-specific commands and the table of all commands.
Malformed input raises ZclError and nothing else.
"""

from collections import namedtuple

from otaclient.zcl_client import *  # noqa: F403  (one namespace for host callers)
from otaclient.zcl_client import SUCCESS, WAIT_FOR_DATA, ZclError, _eui64, _pack, _unpack

# What the server receives (client to server)
QueryNextImageReq = namedtuple(
    "QueryNextImageReq", "field_control mfr image_type version hw_version"
)
ImageBlockReq = namedtuple(
    "ImageBlockReq", "field_control mfr image_type version offset max_size eui64 min_block_period"
)
ImagePageReq = namedtuple(
    "ImagePageReq", "field_control mfr image_type version offset max_size page_size spacing eui64"
)
UpgradeEndReq = namedtuple("UpgradeEndReq", "status mfr image_type version")


def encode_image_notify(payload_type, jitter, mfr=None, image_type=None, version=None):
    fields = (mfr, image_type, version)
    if not 0 <= payload_type <= 3 or not 1 <= jitter <= 100:
        raise ZclError("BAD_FIELD")
    if None in fields[:payload_type]:
        raise ZclError("BAD_FIELD")
    fmt = "<BBHHI"[: 3 + payload_type]
    return _pack(fmt, payload_type, jitter, *fields[:payload_type])


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


def decode_image_block_req(p):
    head = _unpack("<BHHIIB", p, 0, False)
    fc = head[0]
    if fc > 3:
        raise ZclError("BAD_FIELD_CONTROL")
    tail = _unpack(("<", "<8s", "<H", "<8sH")[fc], p, 14)
    eui64 = _eui64(tail[0]) if fc & 1 else None
    return ImageBlockReq(*(head + (eui64, tail[-1] if fc & 2 else None)))


def decode_image_page_req(p):
    head = _unpack("<BHHIIBHH", p, 0, False)
    if head[0] > 1:
        raise ZclError("BAD_FIELD_CONTROL")
    tail = _unpack(("<", "<8s")[head[0]], p, 18)
    return ImagePageReq(*(head + ((_eui64(tail[0]) if head[0] else None),)))


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


def decode_upgrade_end_req(p):
    return UpgradeEndReq(*_unpack("<BHHI", p))


def encode_upgrade_end_rsp(mfr, image_type, version, current_time, upgrade_time):
    return _pack("<HHIII", mfr, image_type, version, current_time, upgrade_time)


from otaclient.zcl_mfr import *  # noqa: E402, F403  (re-export: one namespace for callers)
