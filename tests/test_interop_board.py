"""The real agent on a sim board (MicroPython unix port, HAN link on a pty) updated by a
minimal Comms Hub whose ZCL frames are zigpy's (tests/interop_ch.py) and whose link and
manufacturer-specific frames are written from docs/link-protocol.md (tests/interop_link.py).

Standard-CH cases run against boards provisioned without a CH link key (a standard CH
cannot seal: on a real HAN, APS security does that job); one keyed board checks the docs'
sealing bytes. Each successful case ends with the board running the new version, saying
so in its next Query Next Image Request, and every byte of every file served once.
The hub's server side against an independent client is another file's.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path

import interop_link as L
import pytest
from hanota import mpycross, paths
from hanota.board import defs, provision
from hanota.rig import simboards
from hanota.rig.factory import Images
from hanota.sim import appimage
from hanota.sim.runner import SimBoard
from interop_ch import NEVER, InteropCH, WaitForData
from zigpy.zcl.foundation import Status

pytestmark = pytest.mark.micropython
BOARD = "sim-ppmid"
V1, V2 = 0x01000000, 0x02000000
SUPPLIER = "supplier-a"


class Kit:
    """The manufacturer key, the factory app (V1) and signed images of the agent app at
    V2, built once per module: a compressed single file (~53 kB), the same in two
    fragments, and a 200 kB uncompressed file."""

    def __init__(self, root: Path):
        self.root = root
        self.images = Images(root / "keys")
        bdef = defs.load(BOARD)
        tree = mpycross.compile_tree(appimage.collect(paths.FIRMWARE))  # once: ~3 s
        self.v1_app = appimage.build(tree, V1, bdef, precompile=False)
        v2_app = appimage.build(tree, V2, bdef, precompile=False)
        build = self.images.build
        self.small = _read(build(V2, board=BOARD, payload=v2_app, compress=True, name="small"))
        self.frags = _read(build(V2, board=BOARD, payload=v2_app, compress=True, max_size=30000,
                                 name="frags"))  # fmt: skip
        big_app = appimage.build(tree, V2, bdef, pad_to=200_000, precompile=False)
        self.big = _read(build(V2, board=BOARD, payload=big_app, name="big"))
        self._n = 0

    def board(self, keyed: bool) -> tuple[SimBoard, dict]:
        """A fresh sim board running V1; without a CH link key unless keyed."""
        self._n += 1
        d = self.root / f"board{self._n}"
        ident, record = simboards.fresh(d, BOARD, factory_version=V1, trust=[self.images.pub_path],
                                        suppliers=[SUPPLIER], seed=f"{d}", app=self.v1_app)  # fmt: skip
        if not keyed:  # identity.json without "link_key": source address only (docs/security.md)
            ident.link_key = b""
            simboards.write_store(d, defs.load(BOARD), provision.store_files(ident))
        return SimBoard(d), record


def _read(files: list[Path]) -> list[bytes]:
    return [p.read_bytes() for p in files]


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    return Kit(tmp_path_factory.mktemp("interop"))


@contextmanager
def serving(kit, files, keyed=False, **settings):
    """A started board and the CH on its HAN pty; both stopped after."""
    sb, record = kit.board(keyed)
    key = bytes.fromhex(record["link_key"]) if keyed else None
    ch = InteropCH(files, key=key, dev_addr=record["short_addr"], **settings)
    with sb, ch.start(sb.han_path):
        try:
            yield sb, ch, record
        except BaseException:
            print(sb.console_text()[-3000:])  # shown by pytest on failure
            raise
    assert ch.error is None, ch.error


def queried_at(ch, version):
    return [r for r in ch.received("query_next_image") if r.obj.current_file_version == version]


def updated(sb, ch, record, timeout=90):
    """The board rebooted into V2 and said so (its query at V2, its announce with boot
    status 1), the bootloader runs V2; the CH served every byte of every file exactly
    once, and nothing odd came over the link."""
    ch.wait(lambda: queried_at(ch, V2), timeout, "a Query Next Image Request at V2")
    assert sb.running_version == V2
    assert [e["version"] for e in sb.events if e["event"] == "boot"] == [V1, V2]
    for i, f in enumerate(ch.files):
        blocks = ch.served_bytes(i)
        ends = [0] + [o + n for o, n in blocks]
        assert [o for o, _ in blocks] == ends[:-1], f"file {i}: a byte served twice or skipped"
        assert ends[-1] == len(f.data) == sum(n for _, n in blocks)
    announced = [r.obj for r in ch.received("device_announce")]
    eui = bytes.fromhex(record["eui64"])
    assert [(a.eui64, a.version, a.boot_status) for a in announced] == [(eui, V1, 0), (eui, V2, 1)]
    wire_checks(ch, record["eui64"])
    assert ch.anomalies == [] and ch.link_errors() == {"short": 0, "crc": 0, "oversize": 0}


def wire_checks(ch, eui64):
    """The frame control bytes docs/link-protocol.md section 2 says the board sends; block
    and page requests no larger than a ZigBee stack can answer (an octet string of 0xFF
    bytes is invalid: zigpy refuses to write one), their node address (when given) least
    significant byte first."""
    want = {"default_response": 0x10}
    for name in ("device_announce", "activation_alert", "link_session"):
        want[name] = 0x15
    for r in ch.rx:
        assert int(r.hdr.frame_control) == want.get(r.name, 0x11), (r.name, r.hdr)
        assert getattr(r.obj, "maximum_data_size", 0) <= 254, r
        addr = getattr(r.obj, "request_node_addr", None)
        if addr is not None:
            assert str(addr).replace(":", "") == eui64, r


def test_zigpy_server_like_settings(kit):
    # 50-byte blocks, Image Notify payload type 0 when the image arrives, times 0/0
    with serving(kit, kit.small, block_cap=50, hold=True, end_times=(0, 0)) as (sb, ch, rec):
        ch.wait(lambda: ch.sent("query_next_image_response"), 30, "the boot query")
        assert ch.sent("query_next_image_response")[0].obj.status == Status.NO_IMAGE_AVAILABLE
        time.sleep(0.5)
        assert len(ch.received("query_next_image")) == 1  # idle: no query without a notify
        ch.notify(payload_type=0)
        updated(sb, ch, rec)
    assert {n for _, _, n in ch.served} <= set(range(1, 51))
    assert max(n for _, _, n in ch.served) == 50


def test_254_byte_blocks(kit):
    with serving(kit, kit.small, block_cap=254) as (sb, ch, rec):
        updated(sb, ch, rec)
    sizes = [n for _, _, n in ch.served]
    assert set(sizes[1:-1]) == {254}  # all but the head's block and the file's last


@pytest.mark.parametrize("cap", [254, 50])
def test_no_page_support_falls_back_to_block_requests(kit, cap):
    # with blocks smaller than asked too: the board learns the server's block size from
    # its first answer, so no byte is asked for twice
    with serving(kit, kit.small, pages=False, block_cap=cap) as (sb, ch, rec):
        updated(sb, ch, rec)
    assert max(n for _, _, n in ch.served) == cap
    pages = ch.received("image_page")
    refusals = [t.obj for t in ch.sent("default_response") if t.obj.command_id == 0x04]
    assert pages and len(refusals) == len(pages)
    assert {r.status for r in refusals} == {Status.UNSUP_CLUSTER_COMMAND}
    # every byte came from a block request, each answered with data
    blocks = ch.received("image_block")
    assert len(blocks) == len(ch.served) == len(ch.sent("image_block_response"))
    first_block = blocks[0].t
    assert all(p.t < first_block for p in pages), "a page request after the fallback"


def test_wait_for_data_then_data_at_the_min_block_period(kit):
    size = len(kit.small[0])
    wait = WaitForData(at=size - 8000, count=2, current_time=5000, request_time=5001,
                       min_block_period=40)  # fmt: skip
    with serving(kit, kit.small, wait_for_data=wait) as (sb, ch, rec):
        updated(sb, ch, rec)
    waits = [t for t in ch.sent("image_block_response") if t.obj.status == Status.WAIT_FOR_DATA]
    assert len(waits) == 2 and wait.count == 0
    reqs = [r for r in ch.rx if r.name in ("image_block", "image_page")]
    after = [r for r in reqs if r.t > waits[-1].t]
    # asked again no sooner than requestTime - currentTime (1 s) + the block period
    assert after[0].t - waits[-1].t >= 1.0
    assert all(r.name == "image_block" for r in after)
    # then one request per minimum block period, never faster
    span = after[-1].t - after[0].t
    assert len(after) > 10 and span >= (len(after) - 1) * 0.040 * 0.9, (len(after), span)


def test_two_fragments_require_more_image(kit):
    assert len(kit.frags) == 2
    with serving(kit, kit.frags) as (sb, ch, rec):
        updated(sb, ch, rec)
    ends = [(r.obj.status, r.obj.file_version) for r in ch.received("upgrade_end")]
    assert ends == [(Status.REQUIRE_MORE_IMAGE, V2), (Status.SUCCESS, V2)]
    offers = [t.index for t in ch.sent("query_next_image_response") if t.obj.status == 0]
    assert offers == [0, 1]  # each fragment offered once
    # REQUIRE_MORE_IMAGE got a Default Response SUCCESS and no Upgrade End Response
    assert [t.index for t in ch.sent("upgrade_end_response")] == [1]
    rsp = [t.obj for t in ch.sent("default_response") if t.obj.command_id == 0x06]
    assert [r.status for r in rsp] == [Status.SUCCESS]


def test_upgrade_time_never_then_a_later_upgrade_end_response(kit):
    with serving(kit, kit.small, end_times=(0, NEVER)) as (sb, ch, rec):
        ch.wait(lambda: ch.sent("upgrade_end_response"), 60, "the Upgrade End Response")
        time.sleep(3)
        assert sb.running_version == V1 and sb.boot_count == 1  # waiting for the CH
        now = 820_000_000  # ZigBee UTC (s since 2000): 2025
        ch.upgrade_end_response(current_time=now, upgrade_time=now + 2)
        sent = ch.sent("upgrade_end_response")[-1].t
        updated(sb, ch, rec)
    reboot = [e for e in sb.events if e["event"] == "boot"][1]["t"]
    assert reboot - sent >= 1.5  # upgradeTime - currentTime after the second response


def verify_alert(raw: bytes, record: dict) -> L.ActivationAlert:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    a = L.parse_activation_alert(raw)
    pub = bytes.fromhex(record["public_key"])
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + pub)
    sig = encode_dss_signature(int.from_bytes(a.signature[:32]), int.from_bytes(a.signature[32:]))
    signed = L.alert_signed_bytes(bytes.fromhex(record["eui64"]), raw)
    key.verify(sig, signed, ec.ECDSA(hashes.SHA256()))  # InvalidSignature if not
    assert L.activation_alert(a) == raw
    return a


def test_ch_without_manufacturer_frames(kit):
    with serving(kit, kit.small, mfr_frames=False) as (sb, ch, rec):
        updated(sb, ch, rec)
        alert = ch.wait(lambda: ch.received("activation_alert"), 30, "an activation alert")[0]
    assert ch.sent("alert_ack") == [] and ch.nonce is None
    a = verify_alert(alert.raw, rec)
    assert (a.alert_code, a.supplier, a.version, a.result) == (L.ALERT_CODE, SUPPLIER, V2, 0)


def test_keyed_board_with_sealed_commands(kit):
    with serving(kit, kit.small, keyed=True) as (sb, ch, rec):
        updated(sb, ch, rec)
        ch.wait(lambda: ch.sent("alert_ack"), 30, "the alert acknowledged")
        # every command but block responses went sealed, in the board's session
        assert all(t.sealed != (t.name == "image_block_response") for t in ch.tx)
        n = len(ch.rx)
        ch.notify(seal=False)  # refused, as docs/link-protocol.md 1.1 says

        def refusal():
            return [r for r in ch.rx[n:] if r.name == "default_response"]

        r = ch.wait(refusal, 10, "the refusal of an unsealed Image Notify")[0]
        assert (r.obj.command_id, r.obj.status) == (0x00, Status.NOT_AUTHORIZED)
        assert not [q for q in ch.rx[n:] if q.name == "query_next_image"]
        ch.notify()  # sealed (in the new session, if the refusal started one): obeyed
        ch.wait(lambda: len(queried_at(ch, V2)) == 2, 10, "a query after a sealed notify")
    assert len(ch.received("link_session")) >= 2  # one per boot at least
    wire_checks(ch, rec["eui64"])  # the refusal's Default Response too


def test_200kb_update_with_alerts_never_acknowledged(kit):
    # the "Done when": a standard CH (no manufacturer-specific frames, so no Alert
    # Ack ever), a 200 kB file served once, and the activation alert backing off: at most
    # 4 sends in the 95 s after the reboot (15 s doubling: at 0, 15 and 45 s)
    assert len(kit.big[0]) > 200_000
    with serving(kit, kit.big, mfr_frames=False) as (sb, ch, rec):
        updated(sb, ch, rec, timeout=120)
        reboot = [e for e in sb.events if e["event"] == "boot"][1]["t"]
        time.sleep(max(0.0, reboot + 95.5 - time.monotonic()))
    alerts = [r for r in ch.received("activation_alert") if r.t <= reboot + 95]
    assert 2 <= len(alerts) <= 4, [round(r.t - reboot, 1) for r in alerts]
    gaps = [b.t - a.t for a, b in zip(alerts, alerts[1:], strict=False)]
    # each wait longer than the last (15 s, then 30 s; a fixed period fails this, and a
    # stall of up to ~8 s on a loaded machine does not)
    assert all(b >= 1.3 * a for a, b in zip(gaps, gaps[1:], strict=False)), gaps
    assert len({verify_alert(r.raw, rec) for r in alerts}) == 1  # one alert, sent again


def test_docs_worked_examples():
    # docs/link-protocol.md's bytes, so the suite's second implementation follows them
    assert L.encode(1, 0, 7, b"\x01\x00\x02") == bytes.fromhex("0201010103070104 0255ec00")
    key, nonce = bytes(range(16)), bytes(range(0xF0, 0xF8))
    zcl = bytes.fromhex("1d341221f202000000")
    wire = bytes.fromhex(
        "0101020108051d341221f202010102010101 13dda5d8de565630172ddca65de570a47aba4300"
    )
    assert L.encode(0, 1, 5, L.seal(key, nonce, 0, 1, 1, zcl)) == wire
    (frame,) = L.Decoder().feed(wire)
    assert L.unseal(key, nonce, 0, 1, frame.payload) == (1, zcl)
    with pytest.raises(ValueError):
        L.unseal(key, bytes(8), 0, 1, frame.payload)  # another session's nonce
