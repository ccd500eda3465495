"""otaclient.zcl: DOMAIN.md §3 golden bytes, the command table, round trips, frame header, fuzzing."""

import ast
from pathlib import Path

import pytest
from hanota.paths import ROOT
from hypothesis import given, settings
from hypothesis import strategies as st
from otaclient import zcl, zcl_client

MFR, TYPE, VER = 0x121D, 0x0084, 0x01020304

# (DOMAIN.md §3 golden line, payload hex, decoded namedtuple, encoder call)
GOLDEN = [
    (
        "ImageNotify type3 jitter100 mfr 0x121D type 0x0084 ver 0x01020304 -> 03 64 1d12 8400 04030201",
        zcl.ImageNotify(3, 100, MFR, TYPE, VER),
        lambda: zcl.encode_image_notify(3, 100, MFR, TYPE, VER),
    ),
    (
        "QueryNextImageReq hw=0x1111 cur 0x01000000       -> 01 1d12 8400 00000001 1111",
        zcl.QueryNextImageReq(1, MFR, TYPE, 0x01000000, 0x1111),
        lambda: zcl.encode_query_next_image_req(MFR, TYPE, 0x01000000, 0x1111),
    ),
    (
        "QueryNextImageRsp SUCCESS size 295               -> 00 1d12 8400 04030201 27010000",
        zcl.QueryNextImageRsp(zcl.SUCCESS, MFR, TYPE, VER, 295),
        lambda: zcl.encode_query_next_image_rsp(zcl.SUCCESS, MFR, TYPE, VER, 295),
    ),
    (
        "ImageBlockReq off 0x40 max 48                    -> 00 1d12 8400 04030201 40000000 30",
        zcl.ImageBlockReq(0, MFR, TYPE, VER, 0x40, 48, None, None),
        lambda: zcl.encode_image_block_req(MFR, TYPE, VER, 0x40, 48),
    ),
    (
        "ImageBlockRsp SUCCESS 3 bytes                    -> 00 1d12 8400 04030201 40000000 03 aabbcc",
        zcl.ImageBlockRsp(0, MFR, TYPE, VER, 0x40, b"\xaa\xbb\xcc", None, None, None),
        lambda: zcl.encode_image_block_rsp(zcl.SUCCESS, MFR, TYPE, VER, 0x40, b"\xaa\xbb\xcc"),
    ),
    (
        "ImageBlockRsp WAIT_FOR_DATA cur 0 req 30 mbp 250 -> 97 00000000 1e000000 fa00",
        zcl.ImageBlockRsp(0x97, None, None, None, None, None, 0, 30, 250),
        lambda: zcl.encode_image_block_rsp(
            zcl.WAIT_FOR_DATA, current_time=0, request_time=30, min_block_period=250
        ),
    ),
    (
        "UpgradeEndRsp cur 0 upgrade 0xFFFFFFFF           -> 1d12 8400 04030201 00000000 ffffffff",
        zcl.UpgradeEndRsp(MFR, TYPE, VER, 0, 0xFFFFFFFF),
        lambda: zcl.encode_upgrade_end_rsp(MFR, TYPE, VER, 0, 0xFFFFFFFF),
    ),
]
DECODERS = {
    "ImageNotify": zcl.decode_image_notify,
    "QueryNextImageReq": zcl.decode_query_next_image_req,
    "QueryNextImageRsp": zcl.decode_query_next_image_rsp,
    "ImageBlockReq": zcl.decode_image_block_req,
    "ImageBlockRsp": zcl.decode_image_block_rsp,
    "UpgradeEndRsp": zcl.decode_upgrade_end_rsp,
}


def _hex(line: str) -> bytes:
    return bytes.fromhex(line.split("->")[1].replace(" ", ""))


def test_golden_lines_are_exactly_domain_md_section_3():
    domain = ROOT.parent / "shared" / "design" / "DOMAIN.md"
    if not domain.exists():
        pytest.skip(f"{domain} not beside the checkout")
    text = domain.read_text()
    block = text[text.index("Golden payloads") :].split("```")[1].strip().splitlines()
    assert [line for line, _, _ in GOLDEN] == block


@pytest.mark.parametrize("line,obj,enc", GOLDEN, ids=[g[0].split(" ->")[0] for g in GOLDEN])
def test_golden_encode_and_decode(line, obj, enc):
    assert enc() == _hex(line)
    assert DECODERS[line.split()[0]](_hex(line)) == obj


def test_image_notify_all_payload_types_round_trip():
    for ptype in range(4):
        args = (MFR, TYPE, VER)[:ptype]
        raw = zcl.encode_image_notify(ptype, 50, *args)
        assert len(raw) == (2, 4, 6, 10)[ptype]
        assert zcl.decode_image_notify(raw) == zcl.ImageNotify(
            ptype, 50, *(args + (None,) * (3 - ptype))
        )


# at least one record of every command of zcl.COMMANDS (a test checks they cover it)
SAMPLES = [
    zcl.ImageNotify(0, 1, None, None, None),
    zcl.QueryNextImageReq(0, MFR, TYPE, VER, None),
    zcl.QueryNextImageRsp(zcl.NO_IMAGE_AVAILABLE, None, None, None, None),
    zcl.QueryNextImageRsp(zcl.NOT_AUTHORIZED, None, None, None, None),
    zcl.ImageBlockReq(1, MFR, TYPE, VER, 7, 255, b"\x01" * 8, None),
    zcl.ImageBlockReq(2, MFR, TYPE, VER, 7, 255, None, 250),
    zcl.ImageBlockReq(3, MFR, TYPE, VER, 0xFFFFFFFF, 40, bytes(range(8)), 0),
    zcl.ImagePageReq(0, MFR, TYPE, VER, 0, 255, 4096, 0, None),
    zcl.ImagePageReq(1, MFR, TYPE, VER, 100, 64, 1024, 20, bytes(range(8))),
    zcl.ImageBlockRsp(zcl.SUCCESS, MFR, TYPE, VER, 0, bytes(255), None, None, None),
    zcl.ImageBlockRsp(zcl.SUCCESS, MFR, TYPE, VER, 0, b"", None, None, None),
    zcl.ImageBlockRsp(zcl.ABORT, None, None, None, None, None, None, None, None),
    zcl.UpgradeEndReq(zcl.REQUIRE_MORE_IMAGE, MFR, TYPE, VER),
    zcl.UpgradeEndReq(zcl.INVALID_IMAGE, MFR, TYPE, VER),
    zcl.UpgradeEndRsp(MFR, TYPE, VER, 1000, 1060),
    zcl.DefaultRsp(zcl.IMAGE_BLOCK_RSP, zcl.MALFORMED_COMMAND),
    zcl.DeviceAnnounce(bytes.fromhex("0011223344556677"), 3, VER, zcl.BOOT_ROLLED_BACK),
    zcl.ActivationAlert(0x8F8B, "supplier-a", VER, 0, 123456, 7, bytes(range(64))),
    zcl.AlertAck(7),
    zcl.LinkSession(bytes(range(8))),
]


def _entry(obj):
    return next(c for c in zcl.COMMANDS if type(obj) is c.record)


@pytest.mark.parametrize("obj", SAMPLES, ids=lambda o: type(o).__name__)
def test_round_trip_through_whole_frames(obj):
    entry = _entry(obj)
    ways = (True, False) if entry.server_to_client is None else (entry.server_to_client,)
    for way in ways:
        frame = zcl.encode_command(obj, 42, server_to_client=way)
        cmd, seq, s2c, mfr, payload = zcl.decode_frame(frame)
        assert (cmd, seq, s2c, mfr) == (entry.id, 42, way, entry.mfr)
        got = zcl.decode_command(cmd, payload, s2c, mfr)
        if hasattr(obj, "field_control"):
            assert got.field_control == obj.field_control
        assert got == obj
        fields = obj[1:] if hasattr(obj, "field_control") else obj
        assert entry.decode(entry.encode(*fields)) == obj


def _command_id_constants():
    # zcl_client's block of command ids: from its "# Command ids" line to the blank line
    lines = (Path(zcl.__file__).parent / "zcl_client.py").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("# Command ids"))
    end = lines.index("", start)
    names = [line.split(" = const(")[0] for line in lines[start + 1 : end]]
    return {n: getattr(zcl_client, n) for n in names}


def test_the_table_declares_every_command_id_once_by_its_constant():
    ids = _command_id_constants()
    assert len(ids) == 13 and len(set(ids.values())) == len(ids)
    assert sorted(c.id for c in zcl.COMMANDS) == sorted(ids.values())
    assert len({c.record for c in zcl.COMMANDS}) == len(zcl.COMMANDS)
    # each entry names its id by the constant: no id is written twice
    tree = ast.parse(Path(zcl.__file__).read_text())
    table = next(
        n.value for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "COMMANDS"
    )
    assert [getattr(call.args[0], "id", None) for call in table.elts] == [
        next(n for n, v in ids.items() if v == c.id) for c in zcl.COMMANDS
    ]
    assert {c.mfr for c in zcl.COMMANDS} == {None, zcl.MFR_HANOTA}


def test_samples_cover_every_command_of_the_table():
    assert {type(o) for o in SAMPLES} == {c.record for c in zcl.COMMANDS}


@pytest.mark.parametrize("obj", SAMPLES, ids=lambda o: type(o).__name__)
def test_a_board_decodes_what_the_table_sends_to_a_client_and_refuses_the_rest(obj):
    # zcl_client.decode_received is the board's own small dispatch: it agrees with the table
    entry = _entry(obj)
    payload = entry.encode(*(obj[1:] if hasattr(obj, "field_control") else obj))
    if entry.id == zcl.DEFAULT_RSP:  # either way
        assert zcl_client.decode_received(entry.id, payload, False) == obj
    if entry.server_to_client is not False:
        assert zcl_client.decode_received(entry.id, payload, True, entry.mfr) == obj
    if entry.server_to_client is not None:
        unsup = zcl.UNSUP_CLUSTER_COMMAND if entry.mfr is None else zcl.UNSUP_MANUF_CLUSTER_COMMAND
        with pytest.raises(zcl.ZclError) as e:
            zcl_client.decode_received(entry.id, payload, False, entry.mfr)
        assert e.value.status == unsup


def test_no_device_module_imports_the_host_codec():
    # a board loads zcl_client alone; zcl (the table) imports it and nothing imports zcl
    firmware = Path(zcl.__file__).parent.parent
    for path in firmware.rglob("*.py"):
        if path.name == "zcl.py" and path.parent.name == "otaclient":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            assert "otaclient.zcl" not in names, path


def test_frame_control_bytes():
    assert zcl.encode_frame(zcl.QUERY_NEXT_IMAGE_REQ, 5, b"", False)[:1] == b"\x11"
    assert zcl.encode_frame(zcl.IMAGE_BLOCK_RSP, 5, b"", True)[:1] == b"\x19"
    assert zcl.encode_frame(zcl.DEFAULT_RSP, 5, b"\x03\x00", True) == b"\x18\x05\x0b\x03\x00"
    mfr = zcl.encode_frame(zcl.ALERT_ACK, 5, b"", True, zcl.MFR_HANOTA)
    assert mfr == b"\x1d\x34\x12\x05\xf2"


def test_decode_frame_accepts_default_response_enabled_and_both_directions():
    assert zcl.decode_frame(b"\x01\x07\x03ab") == (3, 7, False, None, b"ab")
    assert zcl.decode_frame(b"\x09\x07\x05") == (5, 7, True, None, b"")
    assert zcl.decode_frame(b"\x0d\x34\x12\x07\xf2x") == (0xF2, 7, True, 0x1234, b"x")
    assert zcl.decode_frame(b"\x00\x07\x0b\x01\x00") == (0x0B, 7, False, None, b"\x01\x00")


@pytest.mark.parametrize(
    "frame,code,status",
    [
        (b"\x00\x07\x01", "UNSUP_GENERAL_COMMAND", zcl.UNSUP_GENERAL_COMMAND),  # read attributes
        (b"\x10\x07\x00", "UNSUP_GENERAL_COMMAND", zcl.UNSUP_GENERAL_COMMAND),
        (b"\x02\x07\x01", "BAD_FRAME_TYPE", zcl.UNSUP_CLUSTER_COMMAND),
        (b"\x01\x07\x0b", "BAD_FRAME_TYPE", zcl.UNSUP_CLUSTER_COMMAND),
        (b"\x01\x07", "SHORT_FRAME", zcl.MALFORMED_COMMAND),
        (b"\x05\x34\x12\x07", "BAD_LENGTH", zcl.MALFORMED_COMMAND),
    ],
)
def test_decode_frame_rejects_clearly(frame, code, status):
    with pytest.raises(zcl.ZclError) as e:
        zcl.decode_frame(frame)
    assert (e.value.code, e.value.status) == (code, status)


def test_decode_command_checks_direction_and_manufacturer():
    with pytest.raises(zcl.ZclError) as e:
        zcl.decode_command(zcl.QUERY_NEXT_IMAGE_REQ, b"", True)
    assert e.value.status == zcl.UNSUP_CLUSTER_COMMAND
    with pytest.raises(zcl.ZclError) as e:
        zcl.decode_command(zcl.DEVICE_ANNOUNCE, bytes(15), False, 0x9999)
    assert e.value.status == zcl.UNSUP_MANUF_CLUSTER_COMMAND
    with pytest.raises(zcl.ZclError):
        zcl.decode_command(zcl.DEVICE_ANNOUNCE, bytes(15), False, None)


@pytest.mark.parametrize(
    "decoder,payload",
    [
        (zcl.decode_image_notify, bytes.fromhex("0400")),  # payload type 4
        (zcl.decode_image_notify, bytes.fromhex("0000")),  # jitter 0
        (zcl.decode_image_notify, bytes.fromhex("0065")),  # jitter 101
        (zcl.decode_query_next_image_req, bytes.fromhex("011d12840000000001")),  # hw missing
        (zcl.decode_query_next_image_req, bytes.fromhex("021d128400000000011111")),
        (zcl.decode_query_next_image_rsp, bytes.fromhex("98ff")),  # trailing after status
        (zcl.decode_image_block_req, bytes.fromhex("04" + "00" * 13)),
        (zcl.decode_image_block_req, bytes.fromhex("01" + "00" * 13 + "0011")),  # short eui
        (zcl.decode_image_block_rsp, bytes.fromhex("00" * 13 + "04aabbcc")),  # size 4, 3 given
        (zcl.decode_image_block_rsp, bytes.fromhex("97000000001e000000")),
        (zcl.decode_image_block_rsp, b""),
        (zcl.decode_upgrade_end_rsp, bytes(17)),
        (zcl.decode_activation_alert, bytes.fromhex("8b8f00") + bytes(77)),  # empty supplier
        (zcl.decode_activation_alert, bytes.fromhex("8b8f0180") + bytes(77)),  # non-ascii
    ],
)
def test_malformed_payloads_raise_zcl_error(decoder, payload):
    with pytest.raises(zcl.ZclError):
        decoder(payload)


def test_encoders_refuse_out_of_range_fields():
    for call in (
        lambda: zcl.encode_upgrade_end_req(0, MFR, TYPE, 1 << 32),
        lambda: zcl.encode_image_block_req(MFR, TYPE, VER, 0, 256),
        lambda: zcl.encode_image_notify(2, 10, MFR),  # type 2 needs image_type
        lambda: zcl.encode_image_notify(0, 0),
        lambda: zcl.encode_image_block_rsp(zcl.SUCCESS, MFR, TYPE, VER, 0, bytes(256)),
        lambda: zcl.encode_device_announce(b"short", 1, 2, 0),
        lambda: zcl.encode_activation_alert(0x8F8B, "x" * 17, 1, 0, 0, 0, bytes(64)),
        lambda: zcl.encode_activation_alert(0x8F8B, "é", 1, 0, 0, 0, bytes(64)),
        lambda: zcl.encode_activation_alert(0x8F8B, "s", 1, 0, 0, 0, bytes(63)),
    ):
        with pytest.raises(zcl.ZclError):
            call()


def test_activation_alert_signing_bytes_are_eui64_then_payload_before_signature():
    eui = bytes.fromhex("0011223344556677")
    unsigned = zcl.encode_activation_alert(0x8F8B, "supplier-a", VER, 0, 1000, 3, None)
    assert unsigned == bytes.fromhex("8b8f0a") + b"supplier-a" + bytes.fromhex(
        "0403020100e803000003000000"
    )
    payload = zcl.encode_activation_alert(0x8F8B, "supplier-a", VER, 0, 1000, 3, bytes(64))
    assert payload[: -zcl.SIGNATURE_LEN] == unsigned
    assert zcl.alert_signed_bytes(eui, payload[: -zcl.SIGNATURE_LEN]) == eui + unsigned


def test_device_announce_and_alert_ack_golden():
    # the EUI-64 travels least significant byte first, as ZigBee sends it
    eui = bytes.fromhex("0011223344556677")
    raw = zcl.encode_device_announce(eui, 0x0102, VER, 1)
    assert raw == bytes.fromhex("776655443322110002010403020101")
    assert zcl.decode_device_announce(raw).eui64 == eui
    assert zcl.encode_alert_ack(3) == bytes.fromhex("03000000")


ALL_DECODERS = [
    zcl.decode_frame,
    *DECODERS.values(),
    zcl.decode_image_page_req,
    zcl.decode_upgrade_end_req,
    zcl.decode_default_rsp,
    zcl.decode_device_announce,
    zcl.decode_activation_alert,
    zcl.decode_alert_ack,
]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_decoders_raise_only_zcl_error(data):
    for dec in ALL_DECODERS:
        try:
            dec(data)
        except zcl.ZclError:
            pass


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 255), st.binary(max_size=120), st.booleans(), st.booleans())
def test_decode_command_raises_only_zcl_error(cmd, payload, s2c, mfr):
    try:
        zcl.decode_command(cmd, payload, s2c, zcl.MFR_HANOTA if mfr else None)
    except zcl.ZclError:
        pass


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.binary(max_size=255),
)
def test_block_response_round_trip_property(mfr, itype, ver, off, data):
    raw = zcl.encode_image_block_rsp(zcl.SUCCESS, mfr, itype, ver, off, data)
    assert zcl.decode_image_block_rsp(raw) == zcl.ImageBlockRsp(
        0, mfr, itype, ver, off, data, None, None, None
    )
    assert len(raw) == 14 + len(data)


def test_docs_name_every_command():
    doc = (Path(ROOT) / "docs" / "link-protocol.md").read_text()
    for name in ("0xF0", "0xF1", "0xF2", "0x1234", "0x0B", "REQUIRE_MORE_IMAGE"):
        assert name in doc


def test_a_memoryview_payload_stays_a_view_and_bytes_stay_bytes():
    # the device decodes frames in place (link.Decoder.next(True)); hosts get bytes
    blk = zcl.encode_image_block_rsp(zcl.SUCCESS, 0x1234, 0x84, 7, 512, b"\x01\x02\x03")
    frame = zcl.encode_frame(zcl.IMAGE_BLOCK_RSP, 9, blk, True)
    for buf, kind in ((frame, bytes), (bytearray(frame), bytes), (memoryview(frame), memoryview)):
        cmd, seq, s2c, mfr, p = zcl.decode_frame(buf)
        assert type(p) is kind and bytes(p) == blk
        rsp = zcl.decode_command(cmd, p, s2c, mfr)
        assert type(rsp.data) is kind and rsp.data == b"\x01\x02\x03" and rsp.offset == 512


def test_request_node_address_travels_least_significant_byte_first():
    eui = bytes.fromhex("0011223344556677")
    blk = zcl.encode_image_block_req(MFR, TYPE, VER, 0x40, 48, eui64=eui)
    assert blk == bytes.fromhex("011d1284000403020140000000307766554433221100")
    assert zcl.decode_image_block_req(blk).eui64 == eui
    page = zcl.encode_image_page_req(MFR, TYPE, VER, 0, 48, 4096, 0, eui64=eui)
    assert page[-8:] == bytes.fromhex("7766554433221100")
    assert zcl.decode_image_page_req(page).eui64 == eui


def test_offer_indexes_name_the_record_fields():
    # board code reads an offer (QueryNextImageRsp, a plain tuple on a board) by index
    from otaclient import zcl_client as zc

    names = {n: getattr(zc, n) for n in vars(zc) if n.startswith("Q_")}
    fields = {"Q_" + f.upper(): i for i, f in enumerate(zc.QueryNextImageRsp._fields)}
    fields["Q_TYPE"] = fields.pop("Q_IMAGE_TYPE")
    assert names == fields
