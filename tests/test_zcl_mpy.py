"""otaclient.zcl under the real MicroPython: DOMAIN.md golden bytes, frames, round trips."""

import pytest
from mpy import check_mpy
from test_zcl import GOLDEN

pytestmark = pytest.mark.micropython


def test_golden_payloads_under_micropython():
    cases = [
        (line.split()[0], line.split("->")[1].replace(" ", ""), obj) for line, obj, _ in GOLDEN
    ]
    code = """
from otaclient import zcl
from binascii import unhexlify
MFR, TYPE, VER = 0x121D, 0x0084, 0x01020304
enc = {
    "ImageNotify": lambda: zcl.encode_image_notify(3, 100, MFR, TYPE, VER),
    "QueryNextImageReq": lambda: zcl.encode_query_next_image_req(MFR, TYPE, 0x01000000, 0x1111),
    "QueryNextImageRsp": lambda: zcl.encode_query_next_image_rsp(0, MFR, TYPE, VER, 295),
    "ImageBlockReq": lambda: zcl.encode_image_block_req(MFR, TYPE, VER, 0x40, 48),
    "UpgradeEndRsp": lambda: zcl.encode_upgrade_end_rsp(MFR, TYPE, VER, 0, 0xFFFFFFFF),
}
blocks = [zcl.encode_image_block_rsp(0, MFR, TYPE, VER, 0x40, b"\\xaa\\xbb\\xcc"),
          zcl.encode_image_block_rsp(0x97, None, None, None, None, None, 0, 30, 250)]
n = 0
for name, hexs, want in CASES:
    raw = unhexlify(hexs)
    got = getattr(zcl, "decode_" + {"ImageNotify": "image_notify",
        "QueryNextImageReq": "query_next_image_req", "QueryNextImageRsp": "query_next_image_rsp",
        "ImageBlockReq": "image_block_req", "ImageBlockRsp": "image_block_rsp",
        "UpgradeEndRsp": "upgrade_end_rsp"}[name])(raw)
    assert tuple(got) == want, (name, got)
    assert (enc[name]() if name in enc else blocks.pop(0)) == raw, name
    n += 1
print(n)
""".replace("CASES", repr([(n, h, tuple(o)) for n, h, o in cases]))
    assert check_mpy(code).strip() == str(len(GOLDEN))


def test_frames_commands_and_errors_under_micropython():
    check_mpy(
        """
import otaclient
otaclient.TYPED = True  # encode_command dispatches on the record's type (host records)
from otaclient import zcl
objs = [
    zcl.ImageNotify(1, 5, 0x121D, None, None),
    zcl.QueryNextImageReq(0, 1, 2, 3, None),
    zcl.QueryNextImageRsp(0x98, None, None, None, None),
    zcl.ImageBlockReq(3, 1, 2, 3, 4, 255, b"abcdefgh", 9),
    zcl.ImagePageReq(1, 1, 2, 3, 4, 255, 4096, 0, b"abcdefgh"),
    zcl.ImageBlockRsp(0, 1, 2, 3, 4, bytes(255), None, None, None),
    zcl.ImageBlockRsp(0x95, None, None, None, None, None, None, None, None),
    zcl.UpgradeEndReq(0x99, 1, 2, 3),
    zcl.UpgradeEndRsp(1, 2, 3, 4, 5),
    zcl.DefaultRsp(5, 0x80),
    zcl.DeviceAnnounce(b"abcdefgh", 1, 2, 1),
    zcl.ActivationAlert(0x8F8B, "supplier-b", 1, 0, 2, 3, bytes(64)),
    zcl.AlertAck(3),
    zcl.LinkSession(b"abcdefgh"),
]
for o in objs:
    cmd, seq, s2c, mfr, p = zcl.decode_frame(zcl.encode_command(o, 7, True))
    assert seq == 7 and zcl.decode_command(cmd, p, s2c, mfr) == o, o
for bad in (b"", b"\\x00\\x01\\x01", b"\\x03\\x01\\x01", b"\\x05\\x01"):
    try:
        zcl.decode_frame(bad)
        raise AssertionError(bad)
    except zcl.ZclError as e:
        assert isinstance(e, ValueError) and e.code
for dec in (zcl.decode_image_block_rsp, zcl.decode_activation_alert, zcl.decode_image_notify):
    for raw in (b"", b"\\x00", b"\\x97\\x00", bytes(20), b"\\x8b\\x8f\\x01\\xff" + bytes(77)):
        try:
            dec(raw)
        except zcl.ZclError:
            pass
unsigned = zcl.encode_activation_alert(0x8F8B, "s", 1, 0, 2, 3, None)
assert zcl.alert_signed_bytes(b"abcdefgh", unsigned) == b"abcdefgh" + unsigned
"""
    )


def test_a_board_gets_plain_tuples_equal_to_the_host_records():
    # otaclient.record: no namedtuple type per message on the device's heap; the device
    # code unpacks records, so plain tuples with the same fields in order must do
    out = check_mpy(
        """
from otaclient import zcl_client as z
body = b"\\x1d\\x12\\x84\\x00\\x04\\x03\\x02\\x01" + bytes(8)
p = z.encode_frame(0x07, 1, body, True)  # UPGRADE_END_RSP (folded out of the module)
cmd, seq, s2c, mfr, body = z.decode_frame(p)
r = z.decode_received(cmd, body, s2c, mfr)
print(type(r).__name__, r)
"""
    )
    assert out.split() == ["tuple", "(4637,", "132,", "16909060,", "0,", "0)"]
