"""Issue 20, item 1: nothing unauthenticated touches flash, and a hostile CH can make a
board refuse the same bad file only a bounded number of times (CPython, fake board, CH
double; the MicroPython runs are in tests/test_agent_policies_micropython.py).

The board already holds an older image in its inactive slot: a refused file must leave
that slot byte for byte as it was (no erase, no write counted by the fake port).
"""

from __future__ import annotations

import hashlib
import json
import os

import agent_util as U
import harness as H
from fakes import fake_app
from otaclient import image, zcl

V0, V2 = 0x00FF0000, 0x01000100  # the older image in the inactive slot; the offered one
OLD = fake_app(V0, 300_000, seed=3)
HEAD = image.SIGNED_END + image.SIG_SIZE  # header, manifest, manufacturer signature


def _good(size=20_000):
    return U.images(fake_app(V2, size), V2)[0]


def _forged_head(claim=700_000):
    """A file with a trusted key id and a newer version whose manifest claims `claim`
    firmware bytes (sectors a pre-issue board erased and wrote), and a garbage signature."""
    good = _good()
    h = image.parse_header(good)
    m = image.parse_manifest(good[60:], h)
    payload = claim + (claim - 1) // image.CHUNK_SIZE * image.LINK_SIZE  # links included
    m = m._replace(payload_length=payload, fragment_length=claim, total_length=claim)
    total = HEAD + payload
    head = image.pack_header(U.MFR, U.ITYPE, V2, h.hw_min, h.hw_max, total)
    return head + image.pack_manifest(m) + os.urandom(64) + bytes(payload)


def _junk_payload():
    """A correctly signed head (a real image's) followed by junk."""
    good = _good()
    return good[:HEAD] + os.urandom(len(good) - HEAD)


def _board(tmp_path, files, **cfg):
    store = U.store()
    if cfg:
        store["agent_config.json"] = json.dumps(cfg).encode()
    port, dbl = H.make(str(tmp_path), files, store)
    inactive = port.slots[1 - port.active].f
    inactive.seek(0)
    inactive.write(OLD)
    inactive.flush()
    return port, dbl


def _inactive(port):
    f = port.slots[1 - port.active].f
    f.seek(0)
    return hashlib.sha256(f.read()).hexdigest()


def _slot_ops(port):
    return [op for op in port.oplog if op[0] in ("erase", "write")]


def _refusals(port):
    return [m.split(": ")[-1] for m in port.logs if m.startswith("ota: image refused")]


def _ends(dbl):
    return [e[1] for e in dbl.events if e[0] == "end"]


def test_a_trusted_key_id_with_a_bad_signature_touches_no_flash(tmp_path):
    forged = _forged_head()
    port, dbl = _board(tmp_path, [forged])
    dbl.reoffer = False
    before = _inactive(port)
    H.run(port, lambda a: _ends(dbl) and a.client.st == 0)
    assert _ends(dbl) == [zcl.INVALID_IMAGE] and _refusals(port) == ["INVALID_SIGNATURE"]
    assert _slot_ops(port) == [] and _inactive(port) == before
    assert [op for op in port.oplog if op[0] == "put"] == []  # not even the store
    assert dbl.bytes == HEAD  # the head alone was fetched, not the 700 kB it claims


def test_a_signed_head_followed_by_junk_touches_no_flash(tmp_path):
    port, dbl = _board(tmp_path, [_junk_payload()])
    dbl.reoffer = False
    before = _inactive(port)
    H.run(port, lambda a: _ends(dbl) and a.client.st == 0)
    assert _ends(dbl) == [zcl.INVALID_IMAGE] and _refusals(port) == ["BAD_CHAIN"]
    assert _slot_ops(port) == [] and _inactive(port) == before
    assert port.store.get("progress.json") is None
    # the failure of an authentic head is persisted (one store write)
    assert [op for op in port.oplog if op[0] == "put"] == [("put", "agent.json")]
    assert [e[1] for e in json.loads(port.store.get("agent.json"))["bad"]] == [1]


def _attempts(port, code):
    # (virtual seconds) when the board refused the file with `code`
    return [t for t, m in port.timed_logs if m.endswith("image refused: " + code)]


def _loop(tmp_path, data, code, hours=3):
    port, dbl = _board(tmp_path, [data])
    port.timed_logs = []
    log = port.log

    def timed(msg):
        port.timed_logs.append((port.clock / 1000, msg))
        log(msg)

    port.log = timed
    before = _inactive(port)
    a = H.run(port, lambda a: port.clock > hours * 3600_000, limit_ms=hours * 3600_000 + 60_000)
    # reoffer: the double offers the same file again after every refusal
    assert len(_ends(dbl)) > 100 and set(_ends(dbl)) == {zcl.INVALID_IMAGE}
    assert _slot_ops(port) == [] and _inactive(port) == before
    t = _attempts(port, code)
    assert len(t) == 3, t  # policy.DEFAULTS max_failures
    assert t[1] - t[0] >= 60 and t[2] - t[1] >= 120  # failure_backoff_s, doubled
    assert _refusals(port)[-1] == "CAPPED" and "BACKOFF" in _refusals(port)
    return port, dbl, a


def test_a_bad_signature_offered_in_a_loop_is_verified_three_times(tmp_path):
    port, dbl, a = _loop(tmp_path, _forged_head(), "INVALID_SIGNATURE")
    # held in RAM only: forged heads (each its own) cost no store write
    assert [op for op in port.oplog if op[0] == "put"] == []
    assert dbl.bytes == len(_ends(dbl)) * HEAD  # each time the head alone
    assert a.state.get("bad")[0][1] == 3


def test_a_signed_head_with_junk_offered_in_a_loop_is_tried_three_times(tmp_path):
    port, dbl, _a = _loop(tmp_path, _junk_payload(), "BAD_CHAIN")
    assert [op for op in port.oplog if op[0] == "put"] == [("put", "agent.json")] * 3
    bad = json.loads(port.store.get("agent.json"))["bad"]
    assert len(bad) == 1 and bad[0][1] == 3
    # persisted: a new boot still refuses it without a try
    n = len(_ends(dbl))
    H.run(port, lambda a: len(_ends(dbl)) > n + 3)
    assert _refusals(port)[-3:] == ["CAPPED"] * 3 and _slot_ops(port) == []


def test_a_capped_file_does_not_hold_off_the_good_one(tmp_path):
    good = _good()
    port, dbl = _board(tmp_path, [_junk_payload()] * 3 + [good])
    dbl.reoffer = False
    H.run(port, lambda a: port.running_version() == V2 and not a.state.get("alerts"))
    assert _refusals(port)[:1] == ["BAD_CHAIN"]


def test_failed_file_records_are_bounded_and_a_clock_set_back_ends_a_wait():
    from otaclient.policy import Policy

    port = type("P", (), {})()
    port.board = H.BOARD
    port.store = type("S", (), {"get": lambda self, n: None})()
    pol = Policy(port)
    bad = []
    for i in range(10):
        bad = pol.failures(bad, bytes([i]) * 8, 1000, True)
    assert [e[0] for e in bad] == [(bytes([i]) * 8).hex() for i in range(6, 10)]
    bad = pol.failures(bad, bytes([9]) * 8, 1000, True)
    assert bad[-1] == [(bytes([9]) * 8).hex(), 2, 1000 + 120]
    key = bytes([9]) * 8
    assert pol.failures(bad, key, 1100) == "BACKOFF"
    assert pol.failures(bad, key, 1120) is None
    assert pol.failures(bad, key, 0) is None  # an ESP32's clock after power-on: not years
    assert pol.failures(pol.failures(bad, key, 0, True), key, 10**9) == "CAPPED"
    assert pol.failures(bad, bytes(8), 1100) is None
