"""Every policy of issue 4 through the real MicroPython interpreter (unix port).

The real agent (precompiled, as on a board) runs on the fake board (tests/fakes.py)
against the CH double (tests/ota_double.py), both in the MicroPython process. Each test
runs a short scenario script: the prologue below gives it the board, the double and
helpers (`run`, `serve`, `snap`, `ends`, `fetches`), and it stores what it saw in `R`,
which comes back as JSON. Scenarios mirror tests/test_agent.py and tests/test_policy.py
(the CPython versions). R4 (commands from another node) is tested on a live sim board in
tests/test_bad_input_catalogue.py. Heap 512k: the test fixtures (fake flash with 4 KB
buffers, CH double, recorded events) load into it too and fragment it; behaviour, not
memory, is what these tests check (the agent's heap is measured on sim boards).
"""

from __future__ import annotations

import json
import struct
import textwrap

import agent_util as U
import pytest
from fakes import fake_app
from hanota.image.keys import generate, raw_public
from mpy_agent import compiled_fixtures, run_script, write_inputs
from otaclient import zcl

pytestmark = pytest.mark.micropython

V2, V3, V4 = 0x01000100, 0x01000200, 0x01000300
KEYS_TYPE = 0xFFC0
SUCCESS, INVALID, MORE = zcl.SUCCESS, zcl.INVALID_IMAGE, zcl.REQUIRE_MORE_IMAGE

_PROLOGUE = """
import json, hashlib
from binascii import hexlify, unhexlify
import harness, ota_double
from fakes import fake_app
from otaclient import zcl_client as Z
cfg = json.loads(open(%(cfg)r).read())
F = cfg["files"]
store = {}
for name in cfg["store"]:
    store[name] = open(cfg["dir"] + "/" + name, "rb").read()
factory = fake_app(cfg["factory"], 64) if cfg["factory"] else None
port, dbl = harness.make(cfg["dir"], F["serve"], store, cfg["slot"], factory=factory)
dbl.device_pub = unhexlify(cfg["device_pub"])
dbl.eui64 = unhexlify(cfg["eui64"])
port.oplog = None  # grows with every flash operation; port.ops counts them
R = {}
N = {}  # command -> how many times the device sent it
T = []  # (virtual ms, command) of the Query Next Image and Upgrade End Requests
_handle = dbl.handle
def _log_req(cmd, o):
    # no allocation per block request: long-lived litter between pages of garbage
    # would fragment the heap (the fake flash needs 4 KB holes)
    N[cmd] = N.get(cmd, 0) + 1
    if cmd == Z.QUERY_NEXT_IMAGE_REQ or cmd == Z.UPGRADE_END_REQ:
        T.append((int(port.clock), cmd))
    return _handle(cmd, o)
dbl.handle = _log_req
A = [None]
def run(until, limit_ms=3600000):
    A[0] = harness.run(port, until, limit_ms, agent=A[0])
    return A[0]
def serve(name):
    dbl.files = [ota_double._File(p) for p in F[name]]
    dbl.idx = 0
def ends():
    return [e[1] for e in dbl.events if e[0] == "end"]
def sent(cmd):
    return [r[0] for r in T if r[1] == cmd]
def fetches():
    return N.get(Z.IMAGE_BLOCK_REQ, 0) + N.get(Z.IMAGE_PAGE_REQ, 0)
def settled(v):
    return lambda a: port.running_version() == v and not a.state.get("alerts")
def idle_after_end(n):
    return lambda a: len(ends()) >= n and a.client.st == 0
def rec(name):
    raw = port.store.get(name)
    return None if raw is None else json.loads(raw)
def slot():
    f = port.slots[1 - port.active].f
    f.seek(0)
    h = hashlib.sha256()
    b = bytearray(4096)
    for _ in range(port.slot_size // 4096):
        f.readinto(b)
        h.update(b)
    return hexlify(h.digest()).decode()
def snap():
    return {"slot": slot(), "progress": rec("progress.json"), "keys": rec("keys.json"),
            "agent": rec("agent.json"), "running": port.running_version(),
            "pending": port.pending, "boots": len(port.boots), "fetches": fetches(),
            "ends": ends(), "clock": int(port.clock), "now": port.now(),
            "served": dbl.bytes}
def _s(x):
    return x if isinstance(x, str) else x.decode()
"""

_EPILOGUE = """
R["events"] = dbl.events
R["alerts"] = [[_s(x.supplier), x.result, x.version, ok] for x, ok in dbl.alerts]
R["boots"] = port.boots
R["logs"] = port.logs
R["last"] = snap()
print("RESULT " + json.dumps(R))
"""


@pytest.fixture(scope="module")
def mpy_mods(tmp_path_factory):
    """Firmware + fakes/harness/double precompiled once for the module."""
    return compiled_fixtures(tmp_path_factory.mktemp("mpy"))


@pytest.fixture
def scenario(tmp_path, mpy_mods):
    def go(body, files, store, *, factory=None, slot=1 << 20, sub="", timeout=120):
        d = tmp_path / sub if sub else tmp_path
        d.mkdir(exist_ok=True)
        paths = write_inputs(d, files, store)
        cfg = {
            "dir": str(d),
            "files": paths,
            "store": list(store),
            "slot": slot,
            "factory": factory,
            "device_pub": U.device_pub().hex(),
            "eui64": U.EUI64.hex(),
        }
        (d / "cfg.json").write_text(json.dumps(cfg))
        code = _PROLOGUE % {"cfg": str(d / "cfg.json")} + textwrap.dedent(body) + _EPILOGUE
        return run_script(d, code, mpy_mods, "512k", timeout)

    return go


def _refusals(r):
    return [m.split(": ")[-1] for m in r["logs"] if m.startswith("ota: image refused")]


def _untouched(before, after, *fields):
    """Flash (update slot), staged progress, stored state and running version unchanged."""
    for f in ("slot", "progress", "running", "pending", "boots", *fields):
        assert before[f] == after[f], (f, before[f], after[f])


def _alerts(r):
    return [tuple(a) for a in r["alerts"]]


def _app(version, size=20_000, **kw):
    return U.images(fake_app(version, size), version, **kw)


# --- 1. trust anchors and key rotation: tests/test_rotation_micropython.py ----------------


# --- 2. anti-rollback ---------------------------------------------------------------


def test_anti_rollback_under_micropython(scenario):
    """After V2 (counter 3) runs: V1 and V2 offers are ignored (never fetched), a replay of
    the V1 file with its header edited to claim V3 and a V3 with counter 2 are refused
    INVALID_IMAGE with nothing written; a proper V3 (counter 3) still goes in."""
    v1 = _app(U.V1)
    spoofed = bytearray(v1[0])
    struct.pack_into("<I", spoofed, 14, V3)  # OTA header file version
    files = {
        "serve": _app(V2, counter=3),
        "older": v1,
        "equal": _app(V2, counter=3),
        "spoofed": [bytes(spoofed)],
        "lowsc": _app(V3, counter=2),
        "newer": _app(V3, counter=3),
    }
    store = U.store(extra={"agent_config.json": {"query_interval_s": 20}})
    r = scenario(
        """
        run(settled(0x01000100))
        R["base"] = snap()
        for name in ("older", "equal"):
            serve(name)
            q = len(sent(Z.QUERY_NEXT_IMAGE_REQ))
            run(lambda a: len(sent(Z.QUERY_NEXT_IMAGE_REQ)) > q and a.client.st == 0)
            R[name] = snap()
        for name in ("spoofed", "lowsc"):
            serve(name)
            run(idle_after_end(len(ends()) + 1))
            R[name] = snap()
        serve("newer")
        run(settled(0x01000200))
        """,
        files,
        store,
    )
    base = r["base"]
    assert len([m for m in r["logs"] if m.endswith("ignored")]) == 2  # older, equal
    assert base["agent"]["sec_counter"] == 3 and base["running"] == V2
    for name in ("older", "equal"):  # offer ignored: not one block asked, no end request
        s = r[name]
        assert s["fetches"] == base["fetches"] and s["ends"] == base["ends"], name
        _untouched(base, s, "agent")
    for name in ("spoofed", "lowsc"):
        s = r[name]
        assert s["ends"][-1] == INVALID, name
        _untouched(base, s, "agent")
    assert r["spoofed"]["ends"] == [SUCCESS, INVALID]
    assert _refusals(r) == ["BAD_MANIFEST", "COUNTER"]  # header != signed manifest; counter
    assert [e for e in r["events"] if e[0] == "end"][1] == ["end", INVALID, V3]
    assert r["last"]["running"] == V3 and r["last"]["ends"][-1] == SUCCESS
    assert r["last"]["agent"]["sec_counter"] == 3


# --- 3. several suppliers (R2) ------------------------------------------------------


def test_suppliers_alerts_and_supplier_signed_images_under_micropython(scenario):
    """A `00 40` supplier signature passes only with a served supplier's key: a key stored
    for a supplier the device does not serve, or an unknown one, is refused at the head,
    before any flash operation or store write; then the served supplier's image
    activates and every served supplier gets its own signed alert."""
    served, unserved, unknown = generate(), generate(), generate()
    ident = json.loads(U.store()["identity.json"])
    suppliers = ["supplier-a", "supplier-b", "supplier-c"]
    ident["suppliers"] = suppliers
    keys = {
        "supplier-b": raw_public(served.public_key()).hex(),
        "supplier-z": raw_public(unserved.public_key()).hex(),  # known, not served
    }
    store = U.store(extra={"suppliers.json": keys})
    store["identity.json"] = json.dumps(ident).encode()
    files = {
        "serve": [
            *_app(V2, supplier_key=unserved),
            *_app(V2, supplier_key=unknown),
            *_app(V2, supplier_key=served),
        ]
    }
    r = scenario(
        """
        R["s0"] = snap()
        run(idle_after_end(2))
        R["refused"] = snap()
        run(settled(0x01000100))
        """,
        files,
        store,
    )
    assert r["last"]["ends"] == [INVALID, INVALID, SUCCESS]
    assert _refusals(r) == ["SUPPLIER", "SUPPLIER"]
    _untouched(r["s0"], r["refused"], "keys", "agent")  # nothing written, nothing stored
    assert r["refused"]["served"] == 2 * 286  # the heads alone (signatures included)
    assert r["last"]["running"] == V2
    assert _alerts(r) == [(s, zcl.RESULT_SUCCESS, V2, True) for s in suppliers]
    assert ["announce", V2, zcl.BOOT_ACTIVATED] in r["events"]


# --- 4. consumer consent (R6) -------------------------------------------------------


def test_consent_accept_defer_refuse_under_micropython(scenario):
    now0 = 800_000_000  # FakePort's clock origin (ZigBee UTC seconds)
    files = {"serve": _app(V2)}
    acc = scenario(
        "run(settled(0x01000100))",
        files,
        U.store(extra={"consent.json": {"mode": "accept"}}),
        sub="accept",
    )
    assert acc["last"]["running"] == V2 and acc["boots"][0][0] == "reset"
    assert [a[1] for a in acc["alerts"]] == [zcl.RESULT_SUCCESS] * 2
    assert acc["last"]["clock"] < 10_000  # activated at once

    until = now0 + 120
    defer = scenario(
        """
        run(lambda a: port.clock >= 60000)
        R["mid"] = snap()
        R["mid_alerts"] = [[x.result, x.version] for x, ok in dbl.alerts]
        run(lambda a: len(port.boots) > 0)
        R["boot_now"] = port.now()
        run(settled(0x01000100))
        """,
        files,
        U.store(extra={"consent.json": {"mode": "defer", "until": until}}),
        sub="defer",
    )
    mid = defer["mid"]
    assert mid["running"] == U.V1 and not mid["pending"] and mid["boots"] == 0
    assert mid["agent"]["deferred"] == V2 and "activating" not in mid["agent"]
    assert defer["mid_alerts"] == [[zcl.RESULT_DEFERRED, V2]] * 2
    assert until <= defer["boot_now"] <= until + 2
    assert [a[1] for a in defer["alerts"]] == [zcl.RESULT_DEFERRED] * 2 + [zcl.RESULT_SUCCESS] * 2
    assert all(a[3] for a in defer["alerts"])
    assert defer["last"]["running"] == V2 and "deferred" not in defer["last"]["agent"]

    ref = scenario(
        """
        R["s0"] = snap()
        run(lambda a: dbl.alerts and not a.state.get("alerts"))
        R["refused"] = snap()
        run(lambda a: port.clock > 600000)
        """,
        files,
        U.store(extra={"consent.json": {"mode": "refuse"}}),
        sub="refuse",
    )
    last = ref["last"]
    assert last["running"] == U.V1 and not last["pending"] and ref["boots"] == []
    assert _alerts(ref) == [(s, zcl.RESULT_REFUSED, V2, True) for s in U.SUPPLIERS]
    assert ["announce", U.V1, zcl.BOOT_REFUSED] in ref["events"]
    assert last["agent"]["refused"] == [V2] and "activating" not in last["agent"]
    assert last["progress"]["v"] == V2  # staged, verified, not activated
    assert last["slot"] == ref["refused"]["slot"]


# --- 5. the CH discarded the image (R5) ---------------------------------------------


def _frag(version):
    return U.images(fake_app(version, 300_000, seed=version & 0xFF), version, max_size=120_000)


_ABORT_BODY = """
run(lambda a: dbl.idx == 1)  # fragment 0 staged, REQUIRE_MORE_IMAGE sent
dbl.abort_at = 60000  # inside fragment 1
dbl.abort_status = %d
run(lambda a: dbl.abort_at is None and a.client.st == 0)
R["aborted"] = snap()
R["aborted_logs"] = list(port.logs)
"""


def test_ch_discards_image_mid_transfer_under_micropython(scenario):
    """ABORT / NO_IMAGE_AVAILABLE in a block response: stop without an end request, keep
    the running firmware and the verified fragments; the same image resumes from them, a
    newer one replaces them."""
    v2, v3 = _frag(V2), _frag(V3)
    assert len(v2) == len(v3) == 3

    same = scenario(
        _ABORT_BODY % zcl.NO_IMAGE_AVAILABLE
        + """
R["before"] = dbl.bytes
run(settled(0x01000100))
""",
        {"serve": v2},
        U.store(),
        sub="same",
    )
    ab = same["aborted"]
    assert ab["ends"] == [MORE]  # no end request for the discarded transfer
    assert [d[0] for d in ab["progress"]["done"]] == [0] and ab["progress"]["v"] == V2
    assert ab["running"] == U.V1 and not ab["pending"] and ab["boots"] == 0
    assert "activating" not in (ab["agent"] or {})
    assert any("abandoned" in m for m in same["aborted_logs"])
    resumed = same["last"]["served"] - same["before"]
    assert len(v2[1]) + len(v2[2]) <= resumed <= len(v2[1]) + len(v2[2]) + 4096  # not frag 0
    assert same["last"]["running"] == V2
    assert same["last"]["ends"] == [MORE, MORE, SUCCESS]  # frag 1 from its start, then 2

    newer = scenario(
        _ABORT_BODY % zcl.ABORT
        + """
serve("v3")
run(lambda a: len(ends()) >= 2)
R["v3_first"] = snap()
run(settled(0x01000200))
""",
        {"serve": v2, "v3": v3},
        U.store(),
        sub="newer",
    )
    ab = newer["aborted"]
    assert ab["ends"] == [MORE] and [d[0] for d in ab["progress"]["done"]] == [0]
    assert ab["running"] == U.V1 and not ab["pending"]
    first = newer["v3_first"]["progress"]
    assert first["v"] == V3 and [d[0] for d in first["done"]] == [0]  # V2's fragment gone
    assert newer["last"]["running"] == V3
    assert newer["last"]["served"] >= newer["aborted"]["served"] + sum(map(len, v3))
    assert [a[1:3] for a in newer["alerts"]] == [[zcl.RESULT_SUCCESS, V3]] * 2


def test_newer_fragment_over_a_staged_one_is_proven_first_under_micropython(scenario):
    """A newer firmware's fragment that would overwrite a staged fragment is verified
    without writing first: a corrupt one is refused with nothing changed (slot, progress),
    a good one is fetched again and written, and its update completes."""
    v2, v3 = _frag(V2), _frag(V3)
    bad = bytearray(v3[0])
    bad[5000] ^= 1
    r = scenario(
        """
run(lambda a: dbl.idx == 1)  # v2 fragment 0 staged, REQUIRE_MORE_IMAGE sent
R["staged"] = snap()
run(idle_after_end(2))
R["refused"] = snap()
serve("v3")
run(settled(0x01000200))
""",
        {"serve": [v2[0], bytes(bad)], "v3": v3},
        # the good v3[0] has the corrupt one's head: no back-off before its retry here
        U.store(extra={"agent_config.json": {"failure_backoff_s": 0}}),
    )
    assert r["refused"]["ends"] == [MORE, INVALID]
    assert _refusals(r) == ["BAD_CHAIN"]  # the corrupt chunk fails its link in the proof pass
    _untouched(r["staged"], r["refused"])
    kept = r["refused"]["progress"]
    assert kept["v"] == V2 and [d[0] for d in kept["done"]] == [0]
    assert r["last"]["running"] == V3
    assert sum("verified before it overwrites" in m for m in r["logs"]) == 1  # the good one
    served = r["last"]["served"] - r["refused"]["served"]
    assert served >= sum(map(len, v3)) + len(v3[0])  # v3[0] twice: proof pass, then write


# --- 6. upgrade time ----------------------------------------------------------------


def test_upgrade_time_relative_absolute_and_wait_under_micropython(scenario):
    """Three updates in a row: relative (current time 0: in 30 s), absolute (upgrade time
    read against the CH's current time in the same response, which also sets the device
    clock), 0xFFFFFFFF (wait, re-asking every wait_poll_s, until the CH gives a time)."""
    files = {"serve": _app(V2), "v3": _app(V3), "v4": _app(V4)}
    store = U.store(extra={"agent_config.json": {"query_interval_s": 20}})
    r = scenario(
        """
        def sched_then_boot():
            run(lambda a: a.client.st == 5)  # SCHED
            t0, n = port.clock, len(port.boots)
            run(lambda a: len(port.boots) > n, 600000)
            return [int(t0), int(port.clock), port.now()]
        dbl.current_time, dbl.upgrade_time = 0, 30
        R["relative"] = sched_then_boot()
        run(settled(0x01000100))
        serve("v3")
        dbl.current_time = port.now() - 1000  # the CH's clock: the wait is read against it
        dbl.upgrade_time = dbl.current_time + 90
        R["abs_at"] = dbl.upgrade_time
        R["absolute"] = sched_then_boot()
        run(settled(0x01000200))
        serve("v4")
        dbl.current_time, dbl.upgrade_time = 0, 0xFFFFFFFF
        run(lambda a: a.client.st == 4)  # WAIT
        t0 = port.clock
        run(lambda a: port.clock > t0 + 200000)
        R["wait"] = snap()
        R["wait_ends"] = [t for t in sent(Z.UPGRADE_END_REQ) if t > t0]
        R["wait_t0"] = int(t0)
        dbl.upgrade_time = 0  # the CH now says: go
        dbl.idx = 0
        run(settled(0x01000300))
        """,
        files,
        store,
    )
    t0, t1, _ = r["relative"]
    assert 29_000 <= t1 - t0 <= 32_000, (t0, t1)  # whole seconds of the device clock
    _, _, now = r["absolute"]
    assert r["abs_at"] <= now <= r["abs_at"] + 2
    w = r["wait"]
    assert w["running"] == V3 and not w["pending"]
    ends = r["wait_ends"]
    assert len(ends) >= 3, ends  # re-asked every wait_poll_s (60 s)
    gaps = [b - a for a, b in zip([r["wait_t0"], *ends], ends, strict=False)]
    assert all(59_000 <= g <= 61_000 for g in gaps), gaps
    v4_ends = [e for e in r["events"] if e[0] == "end" and e[2] == V4]
    assert all(e[1] == SUCCESS for e in v4_ends) and len(v4_ends) >= 4
    assert r["last"]["running"] == V4
    assert [b[0] for b in r["boots"]] == ["reset", "trial"] * 3


def test_other_older_image_after_ch_discard_replaces_progress_under_micropython(scenario):
    r = scenario(
        _ABORT_BODY % zcl.NO_IMAGE_AVAILABLE
        + """
serve("v2")
run(idle_after_end(2))
""",
        {"serve": _frag(V3), "v2": _app(V2)},
        U.store(),
    )
    assert r["aborted"]["progress"]["v"] == V3
    assert r["last"]["ends"] == [MORE, SUCCESS], _refusals(r)


# --- 8. authenticate before the first erase (issue 20) --------------------------------


def test_bad_signature_and_signed_head_with_junk_touch_no_flash_under_micropython(scenario):
    """On a board whose inactive slot holds an older image: a file with a trusted key id,
    a newer version and a garbage signature, and a correctly signed head followed by
    junk, each leave the slot byte for byte as it was (no erase, no write); offered in a
    loop, each is tried max_failures (3) times, then refused unfetched (CAPPED)."""
    good = _app(V2)[0]
    head = 220  # header, manifest, manufacturer signature
    forged = good[:156] + bytes(64) + good[head:]
    junk = good[:head] + bytes(len(good) - head)
    body = """
f = port.slots[1 - port.active].f
f.seek(0)
old = fake_app(0x00FF0000, 4096, False, 3)
for _ in range(48):  # an older image (192 KB of it) in the inactive slot
    f.write(old)
R["s0"] = snap()
R["ops0"] = port.ops
run(lambda a: port.clock > 900000, 960000)  # 15 min: tries at 0, >= 60, >= 180 s
R["ops"] = port.ops - R["ops0"]
R["ends"] = len(ends())
# keep the result small for the 512k heap: the refusals, not the whole logs and events
port.logs = [m for m in port.logs if m.startswith("ota: image refused")]
dbl.events = []
"""
    for sub, data, code in (("sig", forged, "INVALID_SIGNATURE"), ("junk", junk, "BAD_CHAIN")):
        r = scenario(body, {"serve": [data]}, U.store(), sub=sub)
        _untouched(r["s0"], r["last"])
        refusals = _refusals(r)
        assert refusals.count(code) == 3 and refusals[-1] == "CAPPED", refusals
        assert set(refusals) == {code, "BACKOFF", "CAPPED"}
        bad = r["last"]["agent"]
        if code == "BAD_CHAIN":  # an authentic head's failures are persisted
            assert r["ops"] == 3 and [e[1] for e in bad["bad"]] == [3]  # 3 agent.json puts
        else:  # forged heads: RAM only, no store write, no flash operation at all
            assert r["ops"] == 0 and bad is None
        assert r["ends"] == len(refusals) > 10  # offered again and again, refused each time
        assert r["last"]["served"] <= len(refusals) * head + 3 * len(data)
