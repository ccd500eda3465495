"""The server's half of our manufacturer-specific commands (MFR_HANOTA), and the table of
all commands (both directions) with encode_command / decode_command.

The constants and the client's half (announce, alert, ack) are in otaclient.zcl_client.
Codec only; signing and checking the alert signature is the caller's (p256). Import
these through otaclient.zcl, which re-exports them.
"""

from collections import namedtuple

from otaclient import zcl as _z
from otaclient.zcl_client import (
    LINK_SESSION,
    MFR_HANOTA,
    UNSUP_MANUF_CLUSTER_COMMAND,
    AlertAck,
    ZclError,
    _eui64,
    _pack,
    _unpack,
    decode_alert_ack,
    encode_activation_alert,
    encode_device_announce,
)

DeviceAnnounce = namedtuple("DeviceAnnounce", "eui64 hw_version version boot_status")
LinkSession = namedtuple("LinkSession", "nonce")
ActivationAlert = namedtuple(
    "ActivationAlert", "alert_code supplier version result timestamp counter signature"
)


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


def encode_link_session(nonce):
    if not isinstance(nonce, (bytes, bytearray)) or len(nonce) != 8:
        raise ZclError("BAD_NONCE")
    return bytes(nonce)


def decode_link_session(p):
    (nonce,) = _unpack("<8s", p)
    return LinkSession(nonce)


def encode_alert_ack(counter):
    return _pack("<I", counter)


_TABLE = None


def _table():
    # (class, cmd, server_to_client, manufacturer-specific, encoder, decoder, has field_control)
    global _TABLE
    if _TABLE is None:
        z = _z
        _TABLE = (
            (z.ImageNotify, 0x00, True, False, z.encode_image_notify, z.decode_image_notify, 0),
            (
                z.QueryNextImageReq,
                0x01,
                False,
                False,
                z.encode_query_next_image_req,
                z.decode_query_next_image_req,
                1,
            ),
            (
                z.QueryNextImageRsp,
                0x02,
                True,
                False,
                z.encode_query_next_image_rsp,
                z.decode_query_next_image_rsp,
                0,
            ),
            (
                z.ImageBlockReq,
                0x03,
                False,
                False,
                z.encode_image_block_req,
                z.decode_image_block_req,
                1,
            ),
            (
                z.ImagePageReq,
                0x04,
                False,
                False,
                z.encode_image_page_req,
                z.decode_image_page_req,
                1,
            ),
            (
                z.ImageBlockRsp,
                0x05,
                True,
                False,
                z.encode_image_block_rsp,
                z.decode_image_block_rsp,
                0,
            ),
            (
                z.UpgradeEndReq,
                0x06,
                False,
                False,
                z.encode_upgrade_end_req,
                z.decode_upgrade_end_req,
                0,
            ),
            (
                z.UpgradeEndRsp,
                0x07,
                True,
                False,
                z.encode_upgrade_end_rsp,
                z.decode_upgrade_end_rsp,
                0,
            ),
            (z.DefaultRsp, 0x0B, None, False, z.encode_default_rsp, z.decode_default_rsp, 0),
            (DeviceAnnounce, 0xF0, False, True, encode_device_announce, decode_device_announce, 0),
            (
                ActivationAlert,
                0xF1,
                False,
                True,
                encode_activation_alert,
                decode_activation_alert,
                0,
            ),
            (AlertAck, 0xF2, True, True, encode_alert_ack, decode_alert_ack, 0),
            (LinkSession, LINK_SESSION, False, True, encode_link_session, decode_link_session, 0),
        )
    return _TABLE


def encode_command(obj, seq, server_to_client=None):
    """A whole ZCL frame for any command namedtuple (field_control is derived, not read).

    server_to_client is needed only for DefaultRsp, which goes either way.
    """
    for cls, cmd, s2c, is_mfr, enc, _dec, has_fc in _table():
        if type(obj) is cls:
            payload = enc(*obj[has_fc:])
            s2c = server_to_client if s2c is None else s2c
            return _z.encode_frame(cmd, seq, payload, bool(s2c), MFR_HANOTA if is_mfr else None)
    raise ZclError("UNKNOWN_COMMAND")


def decode_command(cmd, payload, server_to_client, mfr=None):
    """The namedtuple for a decoded frame's command; ZclError with the status to answer."""
    for _cls, c, s2c, is_mfr, _enc, dec, _fc in _table():
        if c == cmd and (s2c is None or s2c == server_to_client) and is_mfr == (mfr is not None):
            if is_mfr and mfr != MFR_HANOTA:
                raise ZclError("UNSUP_MANUF_CLUSTER_COMMAND", UNSUP_MANUF_CLUSTER_COMMAND)
            return dec(payload)
    if mfr is not None:
        raise ZclError("UNSUP_MANUF_CLUSTER_COMMAND", UNSUP_MANUF_CLUSTER_COMMAND)
    raise ZclError("UNSUP_CLUSTER_COMMAND", _z.UNSUP_CLUSTER_COMMAND)
