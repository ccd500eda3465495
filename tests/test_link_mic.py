"""The CH link key (issue 20 item 6): the seal codec against the standard library's HMAC,
and a keyed board (CPython, fake board, sealing CH double) that updates through sealed
commands and refuses forged, unsealed and replayed ones, changing nothing."""

from __future__ import annotations

import hashlib
import hmac
import json
import struct

import agent_util as U
import harness as H
import pytest
from fakes import fake_app
from otaclient import link, zcl
from sealing_double import KEY, SealingDouble

V2 = 0x01000100
NONCE = bytes.fromhex("0102030405060708")
WRONG_KEY = bytes(16)


def keyed_store(extra: dict | None = None, key: bytes = KEY) -> dict:
    """U.store() with the CH link key in identity.json, as provisioning writes it."""
    s = U.store(extra=extra)
    ident = json.loads(s["identity.json"])
    ident["link_key"] = key.hex()
    s["identity.json"] = json.dumps(ident).encode()
    return s


def keyed_board(tmp_path, files, extra: dict | None = None):
    port, _plain = H.make(str(tmp_path), files, keyed_store(extra))
    dbl = SealingDouble(files)
    dbl.clock = lambda: port.clock
    dbl.device_pub, dbl.eui64 = U.device_pub(), U.EUI64
    port.link.peer = dbl
    return port, dbl


def frames(chunks: list[bytes]) -> list[tuple]:
    """(src, dst, seq, cmd, payload) of every frame in the byte chunks a device sent."""
    dec = link.Decoder()
    out = []
    for c in chunks:
        dec.feed(c)
        while (f := dec.next()) is not None:
            cmd, _zseq, _s2c, _mfr, p = zcl.decode_frame(f[3])
            out.append((f[0], f[1], f[2], cmd, p))
    return out


def tap(port, dbl) -> list[bytes]:
    """Record what the device sends from now on (the double still answers)."""
    sent: list[bytes] = []

    def peer(data):
        sent.append(data)
        return dbl(data)

    port.link.peer = peer
    return sent


def inject(port, a, frame: bytes) -> None:
    port.link.down.append((port.clock, frame))
    a.step()


def forged(cmd: int, payload: bytes, mfr=None, key: bytes | None = None, nonce=NONCE,
           counter: int = 1, src: int = 0x0000) -> bytes:  # fmt: skip
    """A frame "from the CH" (src 0x0000) to the device: no MIC, or sealed with `key`."""
    z = zcl.encode_frame(cmd, 77, payload, True, mfr)
    if key is not None:
        z = link.seal(link.pads(key), nonce, src, 1, counter, z)
    return link.encode(src, 1, 9, z)


# --- the codec ------------------------------------------------------------------------------


def test_seal_is_hmac_sha256_128_over_nonce_addresses_counter_and_frame():
    frame = zcl.encode_frame(zcl.IMAGE_NOTIFY, 5, zcl.encode_image_notify(0, 100), True)
    got = link.seal(link.pads(KEY), NONCE, 0x0000, 0x0001, 7, frame)
    msg = NONCE + struct.pack("<HHI", 0, 1, 7) + frame
    mic = hmac.new(KEY, msg, hashlib.sha256).digest()[:16]
    assert got == frame + struct.pack("<I", 7) + mic
    assert len(got) - len(frame) == link.SEC_LEN == 4 + link.MIC_LEN


def test_seal_golden_bytes_of_docs_link_protocol():
    # the worked example of docs/link-protocol.md 1.1 (Alert Ack of counter 2)
    frame = zcl.encode_command(zcl.AlertAck(2), 0x21, True)
    key = bytes(range(16))
    got = link.seal(link.pads(key), bytes(range(0xF0, 0xF8)), 0x0000, 0x0001, 1, frame)
    assert frame.hex() == "1d341221f202000000"
    assert got.hex() == frame.hex() + "01000000" + "dda5d8de565630172ddca65de570a47a"


def test_unseal_accepts_its_own_seal_and_refuses_any_change():
    pads = link.pads(KEY)
    frame = zcl.encode_frame(zcl.UPGRADE_END_RSP, 3, bytes(16), True)
    sealed = link.seal(pads, NONCE, 0, 1, 41, frame)
    assert link.unseal(pads, NONCE, 0, 1, sealed) == 41
    assert link.unseal(pads, NONCE, 0, 1, memoryview(sealed)) == 41  # the device's view
    for i in range(len(sealed)):
        for bit in (0x01, 0x80):
            bad = bytearray(sealed)
            bad[i] ^= bit
            assert link.unseal(pads, NONCE, 0, 1, bytes(bad)) == -1, (i, bit)
    assert link.unseal(link.pads(WRONG_KEY), NONCE, 0, 1, sealed) == -1
    assert link.unseal(pads, bytes(8), 0, 1, sealed) == -1  # another session
    assert link.unseal(pads, NONCE, 5, 1, sealed) == -1  # another source
    assert link.unseal(pads, NONCE, 0, 2, sealed) == -1  # another device, or a broadcast
    assert link.unseal(pads, NONCE, 0, 1, frame) == -1  # not sealed
    assert link.unseal(pads, NONCE, 0, 1, sealed[: link.SEC_LEN - 1]) == -1  # too short


def test_pads_and_seal_refuse_bad_fields():
    with pytest.raises(link.LinkError):
        link.pads(bytes(15))
    with pytest.raises(link.LinkError):
        link.seal(link.pads(KEY), NONCE, 0, 1, 0, b"x")  # counters start at 1


def test_link_session_command_round_trips():
    f = zcl.encode_command(zcl.LinkSession(NONCE), 4)
    cmd, _seq, s2c, mfr, p = zcl.decode_frame(f)
    assert (cmd, s2c, mfr) == (zcl.LINK_SESSION, False, zcl.MFR_HANOTA)
    assert zcl.decode_command(cmd, p, s2c, mfr) == zcl.LinkSession(NONCE)
    with pytest.raises(zcl.ZclError):
        zcl.decode_command(cmd, p[:7], s2c, mfr)


# --- a keyed board ---------------------------------------------------------------------------


@pytest.fixture
def files():
    return U.images(fake_app(V2, 40_000), V2)


def test_keyed_board_updates_through_sealed_commands(tmp_path, files):
    port, dbl = keyed_board(tmp_path, files)
    H.run(port, lambda a: port.running_version() == V2 and not a.state.get("alerts"))
    assert not port.trial and dbl.sessions >= 2  # one link session per boot
    cmds = {c for c, _f in dbl.sealed}
    assert {zcl.QUERY_NEXT_IMAGE_RSP, zcl.UPGRADE_END_RSP, zcl.ALERT_ACK} <= cmds
    assert not [m for m in port.logs if "refused" in m], port.logs
    assert [(a.result, ok) for a, ok in dbl.alerts] == [(zcl.RESULT_SUCCESS, True)] * 2


def _idle(tmp_path):
    port, dbl = keyed_board(tmp_path, [])
    a = H.run(port, lambda a: port.clock > 1000 and a.client.st == 0)
    return port, dbl, a


def _not_authorized(sent, n):
    got = [(f[3], zcl.decode_default_rsp(f[4])) for f in frames(sent) if f[3] == zcl.DEFAULT_RSP]
    assert [(c, r.status) for c, r in got] == [(zcl.DEFAULT_RSP, zcl.NOT_AUTHORIZED)] * n, got


@pytest.mark.parametrize("key", [None, WRONG_KEY], ids=["no_mic", "wrong_key"])
def test_forged_notify_and_query_response_from_ch_address_change_nothing(tmp_path, files, key):
    port, dbl, a = _idle(tmp_path)  # the CH offers nothing: only a forgery could start a fetch
    ops, sent = port.ops, tap(port, dbl)
    rsp = zcl.encode_query_next_image_rsp(0, U.MFR, U.ITYPE, V2, len(files[0]))
    inject(port, a, forged(zcl.IMAGE_NOTIFY, zcl.encode_image_notify(0, 100), key=key))
    a.client.st = 1  # QUERY: the state in which a genuine response starts a fetch
    inject(port, a, forged(zcl.QUERY_NEXT_IMAGE_RSP, rsp, key=key))
    assert a.refused == 2 and a.client.st == 1 and a.client.dl is None and port.ops == ops
    cmds = [f[3] for f in frames(sent)]
    assert zcl.IMAGE_BLOCK_REQ not in cmds and zcl.IMAGE_PAGE_REQ not in cmds
    _not_authorized(sent, 2)
    assert sum("refused (bad MIC)" in m for m in port.logs) == 2


def test_forged_upgrade_end_response_does_not_schedule_activation(tmp_path, files):
    port, dbl = keyed_board(tmp_path, files)
    dbl.upgrade_time = 0xFFFFFFFF  # the CH holds the activation
    a = H.run(port, lambda a: a.client.st == 4)  # WAIT
    end = zcl.encode_upgrade_end_rsp(U.MFR, U.ITYPE, V2, 0, 0)  # "activate now"
    for key in (None, WRONG_KEY):
        inject(port, a, forged(zcl.UPGRADE_END_RSP, end, key=key))
    for _ in range(50):
        a.step()
    assert a.client.st == 4 and not port.pending and port.running_version() == U.V1
    assert a.refused == 2


def test_forged_alert_ack_deletes_no_alert(tmp_path, files):
    port, dbl = keyed_board(tmp_path, files)
    dbl.ack_alerts = False
    a = H.run(port, lambda a: port.running_version() == V2 and len(a.state.get("alerts", [])) == 2)
    before = port.store.get("agent.json")
    for r in a.state.get("alerts", []):
        for key in (None, WRONG_KEY):
            ack = zcl.encode_alert_ack(r[4])
            inject(port, a, forged(zcl.ALERT_ACK, ack, zcl.MFR_HANOTA, key=key))
    assert len(a.state.get("alerts", [])) == 2 and port.store.get("agent.json") == before
    assert a.refused == 4
    dbl.ack_alerts = True  # the CH's own (sealed) acks still work
    H.run(port, lambda a: not a.state.get("alerts"), agent=a)


def test_replayed_sealed_frame_is_refused(tmp_path, files):
    port, dbl, a = _idle(tmp_path)
    sent = tap(port, dbl)
    genuine = dbl.notify()  # sealed in the board's session, counter above the last
    inject(port, a, genuine)
    queries = sum(f[3] == zcl.QUERY_NEXT_IMAGE_REQ for f in frames(sent))
    assert queries == 1 and a.refused == 0
    H.run(port, lambda a: a.client.st == 0, agent=a)  # nothing offered: idle again
    del sent[:]
    inject(port, a, genuine)  # the same bytes again
    assert a.refused == 1 and a.client.st == 0
    assert not [f for f in frames(sent) if f[3] == zcl.QUERY_NEXT_IMAGE_REQ]
    assert any("refused (replayed)" in m for m in port.logs)


def test_refusal_renews_the_session_at_most_every_two_seconds(tmp_path):
    port, dbl, a = _idle(tmp_path)
    old_nonce, old_sessions = a._nonce, dbl.sessions
    stale = dbl.notify()  # sealed in the current session, held back by an attacker
    port.clock += 2500
    inject(port, a, forged(zcl.IMAGE_NOTIFY, zcl.encode_image_notify(0, 100)))
    assert dbl.sessions == old_sessions + 1 and a._nonce != old_nonce and dbl.nonce == a._nonce
    inject(port, a, stale)  # a frame of the previous session: refused, no new session yet
    assert a.refused == 2 and dbl.sessions == old_sessions + 1
    inject(port, a, dbl.notify())  # the CH's frames of the new session are taken
    assert a.refused == 2 and a.client.st == 1


def test_foreign_source_is_refused_on_a_keyed_board_too(tmp_path):
    port, dbl, a = _idle(tmp_path)
    sessions = dbl.sessions
    inject(port, a, forged(zcl.IMAGE_NOTIFY, zcl.encode_image_notify(0, 100), src=0x0042))
    assert a.refused == 1 and a.client.st == 0 and dbl.sessions == sessions
    assert any("refused (not the bound CH)" in m for m in port.logs)


def test_block_responses_need_no_mic(tmp_path, files):
    port, dbl = keyed_board(tmp_path, files)
    seen = []
    inner = dbl.seal

    def seal(cmd, z, dst=None):
        seen.append(cmd)
        return inner(cmd, z, dst)

    dbl.seal = seal
    H.run(port, lambda a: a.client.st == 3 or port.running_version() == V2)
    assert zcl.IMAGE_BLOCK_RSP in seen and dbl.blocks > 100 and dbl.bytes > 40_000


def test_board_without_a_link_key_warns_and_checks_the_source_only(tmp_path):
    port, dbl = H.make(str(tmp_path), [], U.store())
    a = H.run(port, lambda a: port.clock > 1000)
    assert any("WARNING: no CH link key" in m for m in port.logs)
    assert a._key is None and ("other", zcl.LINK_SESSION) not in dbl.events
    inject(port, a, forged(zcl.IMAGE_NOTIFY, zcl.encode_image_notify(0, 100)))
    assert a.refused == 0 and a.client.st == 1  # dev only: the source address is all
