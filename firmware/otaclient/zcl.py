"""ZCL OTA Upgrade cluster (0x0019) on the host: every command, both ways, in one table.

Host only (the hub, the test doubles, the fuzzers); a board imports otaclient.zcl_client
alone, whose client's half (ids, constants, frame header) this module re-exports. Here: the
server's half of the standard commands and of ours (MFR_HANOTA), and COMMANDS, from which
encode_command and decode_command work. Malformed input raises ZclError and nothing else.
"""

from collections import namedtuple

from otaclient.zcl_client import *  # noqa: F403  (one namespace for host callers)
from otaclient.zcl_client import (
    ACTIVATION_ALERT,
    ALERT_ACK,
    DEFAULT_RSP,
    DEVICE_ANNOUNCE,
    IMAGE_BLOCK_REQ,
    IMAGE_BLOCK_RSP,
    IMAGE_NOTIFY,
    IMAGE_PAGE_REQ,
    LINK_SESSION,
    MFR_HANOTA,
    QUERY_NEXT_IMAGE_REQ,
    QUERY_NEXT_IMAGE_RSP,
    SUCCESS,
    UNSUP_CLUSTER_COMMAND,
    UNSUP_MANUF_CLUSTER_COMMAND,
    UPGRADE_END_REQ,
    UPGRADE_END_RSP,
    WAIT_FOR_DATA,
    AlertAck,
    DefaultRsp,
    ImageBlockRsp,
    ImageNotify,
    QueryNextImageRsp,
    UpgradeEndRsp,
    ZclError,
    _eui64,
    _pack,
    _unpack,
    decode_alert_ack,
    decode_default_rsp,
    decode_image_block_rsp,
    decode_image_notify,
    decode_query_next_image_rsp,
    decode_upgrade_end_rsp,
    encode_activation_alert,
    encode_default_rsp,
    encode_device_announce,
    encode_frame,
    encode_image_block_req,
    encode_image_page_req,
    encode_query_next_image_req,
    encode_upgrade_end_req,
)

# What the server receives (client to server); the client's records are zcl_client's
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
DeviceAnnounce = namedtuple("DeviceAnnounce", "eui64 hw_version version boot_status")
ActivationAlert = namedtuple(
    "ActivationAlert", "alert_code supplier version result timestamp counter signature"
)
LinkSession = namedtuple("LinkSession", "nonce")


# --- the server's half: standard commands ------------------------------------------------


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


# --- the server's half: ours (MFR_HANOTA); signing the alert is the caller's (p256) -------


def decode_device_announce(p):
    eui64, hw, ver, boot = _unpack("<8sHIB", p)
    return DeviceAnnounce(_eui64(eui64), hw, ver, boot)


def decode_activation_alert(p):
    code, n = _unpack("<HB", p, 0, False)
    if not 1 <= n <= 16:
        raise ZclError("BAD_SUPPLIER")
    raw, ver, result, ts, counter, sig = _unpack("<%dsIBII64s" % n, p, 3)
    if min(raw) < 0x20 or max(raw) > 0x7E:
        raise ZclError("BAD_SUPPLIER")
    return ActivationAlert(code, raw.decode(), ver, result, ts, counter, sig)


def encode_alert_ack(counter):
    return _pack("<I", counter)


def encode_link_session(nonce):
    if not isinstance(nonce, (bytes, bytearray)) or len(nonce) != 8:
        raise ZclError("BAD_NONCE")
    return bytes(nonce)


def decode_link_session(p):
    (nonce,) = _unpack("<8s", p)
    return LinkSession(nonce)


# --- the table ----------------------------------------------------------------------------

# One entry per command, zigpy's ZCLCommandDef in our terms. server_to_client: the command's
# direction (None: either way); mfr: the manufacturer code in its header, or None; record:
# its namedtuple; encode(*fields) -> payload, the record's fields in order without
# field_control (the encoder derives it); decode(payload) -> record.
Command = namedtuple("Command", "id server_to_client mfr record encode decode")

# fmt: off
COMMANDS = (
    #       id                    to client  mfr         record             encode, decode
    Command(IMAGE_NOTIFY,         True,      None,       ImageNotify,       encode_image_notify, decode_image_notify),
    Command(QUERY_NEXT_IMAGE_REQ, False,     None,       QueryNextImageReq, encode_query_next_image_req, decode_query_next_image_req),
    Command(QUERY_NEXT_IMAGE_RSP, True,      None,       QueryNextImageRsp, encode_query_next_image_rsp, decode_query_next_image_rsp),
    Command(IMAGE_BLOCK_REQ,      False,     None,       ImageBlockReq,     encode_image_block_req, decode_image_block_req),
    Command(IMAGE_PAGE_REQ,       False,     None,       ImagePageReq,      encode_image_page_req, decode_image_page_req),
    Command(IMAGE_BLOCK_RSP,      True,      None,       ImageBlockRsp,     encode_image_block_rsp, decode_image_block_rsp),
    Command(UPGRADE_END_REQ,      False,     None,       UpgradeEndReq,     encode_upgrade_end_req, decode_upgrade_end_req),
    Command(UPGRADE_END_RSP,      True,      None,       UpgradeEndRsp,     encode_upgrade_end_rsp, decode_upgrade_end_rsp),
    Command(DEFAULT_RSP,          None,      None,       DefaultRsp,        encode_default_rsp, decode_default_rsp),
    Command(DEVICE_ANNOUNCE,      False,     MFR_HANOTA, DeviceAnnounce,    encode_device_announce, decode_device_announce),
    Command(ACTIVATION_ALERT,     False,     MFR_HANOTA, ActivationAlert,   encode_activation_alert, decode_activation_alert),
    Command(ALERT_ACK,            True,      MFR_HANOTA, AlertAck,          encode_alert_ack, decode_alert_ack),
    Command(LINK_SESSION,         False,     MFR_HANOTA, LinkSession,       encode_link_session, decode_link_session),
)
# fmt: on

# the table's two indexes: by record type (encode), by (id, mfr, direction) (decode)
_BY_RECORD = {c.record: c for c in COMMANDS}
_BY_KEY = {
    (c.id, c.mfr, s2c): c
    for c in COMMANDS
    for s2c in ((True, False) if c.server_to_client is None else (c.server_to_client,))
}


def encode_command(obj, seq, server_to_client=None):
    """A whole ZCL frame for any command record of COMMANDS (field_control is derived, not
    read). server_to_client is needed only for DefaultRsp, which goes either way."""
    c = _BY_RECORD.get(type(obj))
    if c is None:
        raise ZclError("UNKNOWN_COMMAND")
    payload = c.encode(*(obj[1:] if hasattr(obj, "field_control") else obj))
    s2c = server_to_client if c.server_to_client is None else c.server_to_client
    return encode_frame(c.id, seq, payload, bool(s2c), c.mfr)


def decode_command(cmd, payload, server_to_client, mfr=None):
    """The record of any command of COMMANDS, its direction and manufacturer code checked;
    ZclError with the status to answer (0x81, or 0x83 with a manufacturer code)."""
    c = _BY_KEY.get((cmd, mfr, bool(server_to_client)))
    if c is None:
        if mfr is None:
            raise ZclError("UNSUP_CLUSTER_COMMAND", UNSUP_CLUSTER_COMMAND)
        raise ZclError("UNSUP_MANUF_CLUSTER_COMMAND", UNSUP_MANUF_CLUSTER_COMMAND)
    return c.decode(payload)
