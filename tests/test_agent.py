"""The agent end to end in-process (CPython): fake board, CH double, virtual clock."""

from __future__ import annotations

import json

import agent_util as U
import harness as H
import pytest
from fakes import fake_app
from otaclient import zcl

V2 = 0x01000100


def _board(tmp_path, files, store=None, **kw):
    port, dbl = H.make(str(tmp_path), files, store or U.store(), **kw)
    dbl.device_pub = U.device_pub()
    dbl.eui64 = U.EUI64
    return port, dbl


def _settled(port, version):
    return lambda a: port.running_version() == version and not a.state.get("alerts")


def _agent_state(port):
    return json.loads(port.store.get("agent.json") or b"{}")


@pytest.fixture
def frag_files():
    return U.images(fake_app(V2, 300_000), V2, max_size=120_000, counter=3)


def test_fragmented_update_activates_confirms_and_reports(tmp_path, frag_files):
    assert len(frag_files) == 3
    port, dbl = _board(tmp_path, frag_files)
    H.run(port, _settled(port, V2))
    assert [b[0] for b in port.boots] == ["reset", "trial"]
    assert not port.trial  # confirmed
    ends = [e for e in dbl.events if e[0] == "end"]
    assert [e[1] for e in ends] == [zcl.REQUIRE_MORE_IMAGE] * 2 + [zcl.SUCCESS]
    assert ("announce", V2, zcl.BOOT_ACTIVATED) in dbl.events
    assert dbl.events[-1] == ("query", V2)
    alerts = [(a.supplier, a.result, a.version, ok) for a, ok in dbl.alerts]
    assert alerts == [(s, zcl.RESULT_SUCCESS, V2, True) for s in U.SUPPLIERS]
    st = _agent_state(port)
    assert st["sec_counter"] == 3 and st["alert_counter"] == 2 and "activating" not in st
    assert port.store.get("progress.json") is None
    assert port.ops < 450, port.ops  # ~1 erase + 4 writes of 1 KB per 4 KB sector


def test_activation_lets_the_decoder_go_before_its_records(tmp_path, monkeypatch):
    """A reset follows an activation: the inflater's decoder (3.4 KB on a board) is let go
    before the activation record and set_pending, which need free heap."""
    from otaclient import inflate

    files = U.images(fake_app(V2, 50_000), V2, compress=True)
    port, dbl = _board(tmp_path, files)
    order = []
    monkeypatch.setattr(inflate, "release", lambda: order.append("release"))
    real_update = port.store.put_json

    def put_json(name, obj):
        if name == "agent.json" and "activating" in obj:
            order.append("activating record")
        return real_update(name, obj)

    monkeypatch.setattr(port.store, "put_json", put_json)
    real_pending = port.set_pending
    monkeypatch.setattr(
        port, "set_pending", lambda v: (order.append("set_pending"), real_pending(v))
    )
    H.run(port, _settled(port, V2))
    assert order[:3] == ["release", "activating record", "set_pending"], order


def test_fragments_served_in_any_order(tmp_path, frag_files):
    port, dbl = _board(tmp_path, [frag_files[2], frag_files[0], frag_files[1]])
    H.run(port, _settled(port, V2))
    assert dbl.bytes == sum(map(len, frag_files))


@pytest.mark.bad_input("duplicate-fragment")
def test_duplicate_fragment_is_skipped_after_its_manifest(tmp_path, frag_files):
    files = [frag_files[0], frag_files[0], frag_files[1], frag_files[2]]
    port, dbl = _board(tmp_path, files)
    H.run(port, _settled(port, V2))
    ends = [e[1] for e in dbl.events if e[0] == "end"]
    assert ends == [zcl.REQUIRE_MORE_IMAGE] * 3 + [zcl.SUCCESS]
    assert dbl.bytes <= sum(map(len, frag_files)) + 4096  # the duplicate cost one page


def test_crashing_new_app_is_rolled_back_and_reported(tmp_path):
    files = U.images(fake_app(V2, 100_000, crash=True), V2)
    port, dbl = _board(tmp_path, files)
    H.run(port, lambda a: port.boots and _settled(port, U.V1)(a), limit_ms=60_000)
    H.run(port, lambda a: port.clock > 600_000, agent=None)  # the CH keeps offering it
    attempt = ["reset", "trial", "crash", "rollback"]
    assert [b[0] for b in port.boots] == attempt * 2  # max_attempts, then refused
    assert ("announce", U.V1, zcl.BOOT_ROLLED_BACK) in dbl.events
    assert [(a.result, a.version, ok) for a, ok in dbl.alerts] == [(1, U.V1, True)] * 4
    assert _agent_state(port)["failed"] == [[V2, 2]]


def test_failed_version_is_not_fetched_again(tmp_path):
    files = U.images(fake_app(V2, 50_000), V2)
    store = U.store(extra={"agent.json": {"failed": [[V2, 2]]}})
    port, dbl = _board(tmp_path, files, store)
    H.run(port, lambda a: port.clock > 5000)
    assert dbl.bytes == 0 and port.ops == 0


@pytest.mark.parametrize("cut", [3, 17, 40, 75])
def test_power_cut_mid_transfer_resumes_losing_at_most_one_fragment(tmp_path, frag_files, cut):
    port, dbl = _board(tmp_path, frag_files)
    H.run(port, _settled(port, V2), cuts=[cut])
    assert ("cut", None) in port.boots
    biggest = max(map(len, frag_files))
    assert dbl.bytes <= sum(map(len, frag_files)) + biggest + 4096, dbl.bytes


def test_power_cut_sweep_every_operation(tmp_path):
    """A cut at every counted flash/store operation of a small fragmented update."""
    files = U.images(fake_app(V2, 40_000), V2, max_size=16_500)
    (tmp_path / "clean").mkdir()
    port, _ = _board(tmp_path / "clean", files)
    H.run(port, _settled(port, V2))
    total = port.ops
    for i in range(total):
        d = tmp_path / str(i)
        d.mkdir()
        port, dbl = _board(d, files)
        H.run(port, _settled(port, V2), cuts=[i], limit_ms=600_000)
        assert port.running_version() == V2, i
        reported = [e for e in dbl.events if e[0] == "announce"][-1]
        assert reported[1] == port.running_version(), (i, reported)
        assert dbl.bytes <= sum(map(len, files)) + max(map(len, files)) + 4096, i


def test_lossy_link_completes(tmp_path, frag_files):
    port, dbl = _board(tmp_path, frag_files)
    lost = set()

    def drop(off):
        if off % 7 == 3 and off not in lost:  # lose each such block once
            lost.add(off)
            return True
        return False

    dbl.drop = drop
    H.run(port, _settled(port, V2))
    assert lost


@pytest.mark.parametrize("cap", [255, 50])
def test_block_requests_when_server_has_no_pages(tmp_path, frag_files, cap):
    # whatever block size the server chooses, every byte of every file is asked for and
    # served once, and no request goes unanswered (none waits out a timeout)
    port, dbl = _board(tmp_path, frag_files)
    dbl.pages, dbl.block_cap = False, cap
    asked: list[float] = []  # board ms of each Image Block Request
    handle = dbl.handle

    def spy(cmd, o):
        if cmd == zcl.IMAGE_BLOCK_REQ:
            asked.append(port.clock)
        return handle(cmd, o)

    dbl.handle = spy
    a = H.run(port, _settled(port, V2))
    assert dbl.bytes == sum(len(f) for f in frag_files)
    assert dbl.block_reqs == dbl.blocks == len(asked)
    stalls = [b - t for t, b in zip(asked, asked[1:]) if b - t >= a.client.cfg["block_timeout_ms"]]  # noqa: B905
    assert not stalls, stalls


@pytest.mark.bad_input("wfd-storm")
def test_wait_for_data_storm_keeps_waiting(tmp_path):
    files = U.images(fake_app(V2, 30_000), V2)
    port, dbl = _board(tmp_path, files)
    dbl.wait_for_data = 200
    dbl.wait = (100, 102, 50)  # wait 2 s + 50 ms each time
    H.run(port, _settled(port, V2), limit_ms=10 * 3600 * 1000)
    assert dbl.wait_for_data == 0
    assert port.clock >= 200 * 2050


def test_abort_mid_transfer_keeps_progress_for_the_same_image(tmp_path, frag_files):
    port, dbl = _board(tmp_path, frag_files)
    a = H.run(port, lambda a: dbl.idx == 1)
    dbl.abort_at = 60_000  # inside the second fragment
    a = H.run(port, lambda a: dbl.abort_at is None and a.client.st == 0, agent=a)
    prog = json.loads(port.store.get("progress.json"))
    assert [d[0] for d in prog["done"]] == [0]
    H.run(port, _settled(port, V2), agent=a)


@pytest.mark.parametrize(
    "current,upgrade,expect_ms",
    [
        (0, 30, 30_000),
        (800_000_000, 800_000_060, 60_000),
        pytest.param(800_000_100, 800_000_000, 0, id="past",
                     marks=pytest.mark.bad_input("upgrade-time-past")),
    ],
)  # fmt: skip
@pytest.mark.parametrize("board_clock", [800_000_000, 0], ids=["clock-set", "clock-unset"])
def test_upgrade_time_relative_absolute_and_past(
    tmp_path, current, upgrade, expect_ms, board_clock
):
    """ZCL reads upgradeTime against the response's currentTime, not the board's clock: a
    board whose clock was never set (an ESP32 after power-on reads 2000, ZigBee 0) waits
    the same, and a set currentTime sets its clock."""
    files = U.images(fake_app(V2, 20_000), V2)
    port, dbl = _board(tmp_path, files)
    port.now0 = board_clock
    dbl.current_time, dbl.upgrade_time = current, upgrade
    a = H.run(port, lambda a: a.client.st == 5 or port.boots)
    t0 = port.clock
    H.run(port, lambda a: bool(port.boots), limit_ms=200_000, agent=a)
    assert expect_ms <= port.clock - t0 <= expect_ms + 2000
    if current:
        assert abs(port.now() - (current + (port.clock - t0) // 1000)) <= 2


def test_a_long_scheduled_wait_is_re_read_from_the_ch(tmp_path):
    """Scheduled far ahead, the board re-sends Upgrade End Request after query_interval_s
    and follows the CH's new upgrade time."""
    files = U.images(fake_app(V2, 20_000), V2)
    port, dbl = _board(tmp_path, files)
    dbl.current_time, dbl.upgrade_time = 800_000_000, 800_000_000 + 10 * 365 * 86400
    ends = []
    real_end = dbl._end
    dbl._end = lambda o: (ends.append(port.clock), real_end(o))[1]
    a = H.run(port, lambda a: a.client.st == 5)
    dbl.upgrade_time = dbl.current_time + 30  # the CH moves the activation closer
    n = len(ends)
    H.run(port, lambda a: bool(port.boots), limit_ms=3_700_000, agent=a)
    assert len(ends) == n + 1, ends  # one re-read after query_interval_s (3600 s)
    assert 3_600_000 <= ends[-1] - ends[n - 1] <= 3_602_000 and port.boots[0][0] == "reset"


def test_upgrade_time_wait_resends_end_request(tmp_path):
    files = U.images(fake_app(V2, 20_000), V2)
    port, dbl = _board(tmp_path, files)
    dbl.upgrade_time = 0xFFFFFFFF
    a = H.run(port, lambda a: port.clock > 200_000)
    ends = [e for e in dbl.events if e[0] == "end"]
    assert len(ends) >= 3 and port.running_version() == U.V1
    dbl.upgrade_time = 0  # the CH now says: go
    dbl.idx = 0
    H.run(port, _settled(port, V2), limit_ms=120_000, agent=a)


def test_consent_refuse_reports_and_keeps_firmware(tmp_path):
    files = U.images(fake_app(V2, 20_000), V2)
    port, dbl = _board(tmp_path, files, U.store(extra={"consent.json": {"mode": "refuse"}}))
    a = H.run(port, lambda a: dbl.alerts and not a.state.get("alerts"))
    assert port.running_version() == U.V1 and not port.boots
    assert [(a.result, a.version) for a, _ in dbl.alerts] == [(zcl.RESULT_REFUSED, V2)] * 2
    assert ("announce", U.V1, zcl.BOOT_REFUSED) in dbl.events
    # the CH keeps offering it: not fetched, ended or refused again while consent refuses
    ends = len([e for e in dbl.events if e[0] == "end"])
    t0 = port.clock
    H.run(port, lambda a: port.clock - t0 > 3 * 3_600_000, 4 * 3_600_000, agent=a)
    assert [e for e in dbl.events if e[0] == "query"][-1] == ("query", U.V1)
    assert len([e for e in dbl.events if e[0] == "end"]) == ends
    assert len(dbl.alerts) == 2 and port.running_version() == U.V1


def test_consent_defer_activates_after_the_time(tmp_path):
    files = U.images(fake_app(V2, 20_000), V2)
    until = 800_000_000 + 120
    store = U.store(extra={"consent.json": {"mode": "defer", "until": until}})
    port, dbl = _board(tmp_path, files, store)
    H.run(port, _settled(port, V2), limit_ms=600_000)
    assert port.clock >= 120_000
    results = [a.result for a, _ in dbl.alerts]
    assert results == [zcl.RESULT_DEFERRED] * 2 + [zcl.RESULT_SUCCESS] * 2


def test_link_efficiency_at_115200_with_2ms_latency(tmp_path):
    """Image bytes per second over line rate, on the modelled full-duplex UART."""
    files = U.images(fake_app(V2, 200_000), V2)
    port, dbl = _board(tmp_path, files, baud=115200, latency_ms=2.0)
    t = {}
    H.run(port, lambda a: a.client.st == 2 and t.setdefault("start", port.clock) is not None)
    H.run(port, lambda a: a.client.st == 3)
    rate = dbl.bytes / ((port.clock - t["start"]) / 1000) / 11520
    assert rate >= 0.85, rate


def test_an_answer_to_an_earlier_query_is_ignored(tmp_path, frag_files):
    """A Query Next Image Response overtaken on the line (NO_IMAGE to the boot query,
    arriving after a notify made the client ask again) must not idle the client for
    query_interval_s: only the answer with the last query's ZCL sequence number counts."""
    from otaclient import client as C
    from otaclient.agent import Agent

    port, _dbl = _board(tmp_path, frag_files)
    a = Agent(port)
    a.boot()  # announce + the boot query
    first = a.client._qseq
    a.client.query()  # asked again (an Image Notify came)
    assert a.client._qseq != first
    stale = zcl.QueryNextImageRsp(zcl.NO_IMAGE_AVAILABLE, None, None, None, None)
    a.client.on_query_rsp(stale, first)
    assert a.client.st == C.QUERY  # still waiting for the answer to the last query
    a.client.on_query_rsp(stale, a.client._qseq)
    assert a.client.st == C.IDLE


def test_alerts_are_queued_unsigned_and_signed_by_the_next_poll(tmp_path):
    # queue() runs in activation code and only persists; poll() signs (RFC 6979: the same
    # signature), also for records a reset left unsigned, before anything is sent
    import hashlib

    from otaclient import p256
    from otaclient.agent import Agent

    port, _ = _board(tmp_path, [])
    a = Agent(port)
    sent = []
    a.alerting()._send = lambda cmd, p, mfr: sent.append(p)
    a.alerting().queue(V2, zcl.RESULT_SUCCESS, activating=None)
    stored = json.loads(port.store.get("agent.json"))["alerts"]
    assert [r[5] for r in stored] == [None] * len(U.SUPPLIERS) and not sent
    a2 = Agent(port)  # a reset before the poll: the records come back from agent.json
    a2.alerting()._send = lambda cmd, p, mfr: sent.append(p)
    a2.alerting().poll()
    stored = json.loads(port.store.get("agent.json"))["alerts"]
    for supplier, version, result, ts, counter, sig in stored:
        body = zcl.encode_activation_alert(
            zcl.ALERT_CODE_ACTIVATION, supplier, version, result, ts, counter, None
        )
        digest = hashlib.sha256(zcl.alert_signed_bytes(U.EUI64, body)).digest()
        assert bytes.fromhex(sig) == p256.sign(U.DEVICE_PRIV, digest)
    assert len(sent) == 1  # the first supplier's at once, the rest staggered (R3)


def test_main_restarts_a_crashed_agent_even_when_the_crash_report_finds_no_heap():
    # the crash report (message, traceback) allocates: after a MemoryError it may fail
    # too, and must not end the loop (a device that stops answering the CH is bricked)
    from otaclient import agent

    class Stop(BaseException):
        pass

    port = _MainPort()
    port.log_fails = 1
    runs = []

    def make_agent(port):
        runs.append(1)
        if len(runs) == 3:
            raise Stop
        raise MemoryError("memory allocation failed") if len(runs) == 1 else ValueError("x")

    with pytest.raises(Stop):
        agent.main(port, make_agent)
    assert len(runs) == 3 and port.sleeps == [1000, 2000]
    assert port.lines[0] == "(no heap)" and "agent: crashed: ValueError" in port.lines[1]


def test_main_resets_the_board_at_the_fifth_crash_in_a_row():
    # a heap the crashed agents left cut up may not fit another: reset (a trial boot that
    # keeps crashing is then rolled back); a crash after a calm minute starts a new row
    from otaclient import agent

    class Reset(BaseException):
        pass

    port = _MainPort()
    port.reset_raises = Reset
    runs = []

    def make_agent(port):
        runs.append(1)
        if len(runs) == 2:
            port.now_ms += 61_000  # ran a minute before this crash: a new row starts
        raise ValueError("boom")

    with pytest.raises(Reset):
        agent.main(port, make_agent)
    assert len(runs) == 6 and port.sleeps == [1000, 1000, 2000, 4000, 8000]
    assert port.lines[-1] == "agent: 5 crashes in a row: reset"


class _MainPort:
    """What agent.main() uses of a port: log, sleep_ms, ticks_ms, reset."""

    def __init__(self):
        self.lines, self.sleeps = [], []
        self.log_fails = 0
        self.now_ms = 0
        self.reset_raises = None

    def log(self, msg):
        if self.log_fails:
            self.log_fails -= 1
            self.lines.append("(no heap)")
            raise MemoryError("no room for the report")
        self.lines.append(msg)

    def sleep_ms(self, ms):
        self.sleeps.append(ms)
        self.now_ms += ms

    def ticks_ms(self):
        return self.now_ms

    def reset(self):
        raise self.reset_raises()


def test_a_bootloader_refusing_the_staged_image_is_a_reported_failed_activation(tmp_path):
    """set_pending raising the contract's error (ESP32: set_boot's own image check) is a
    failed activation: reported to every supplier, counted, staged image dropped; the
    agent keeps running on the old app (no crash loop, no reset)."""
    files = U.images(fake_app(V2, 20_000), V2)
    port, dbl = _board(tmp_path, files)
    port.arm_error = ValueError("VALIDATE_FAILED: set_boot: -5379")
    a = H.run(port, lambda a: dbl.alerts and not a.state.get("alerts"))
    assert port.boots == [] and not port.pending and port.running_version() == 0x01000000
    assert {(al.version, al.result) for al, ok in dbl.alerts} == {(0x01000000, 1)}
    st = _agent_state(port)
    assert st["failed"] == [[V2, 1]] and "activating" not in st
    assert port.store.get("progress.json") is None and a.client.st == 0
    assert any("activation of 01000100 failed: VALIDATE_FAILED" in m for m in port.logs)


def test_a_board_that_cannot_read_its_version_announces_unknown_then_the_activated_one(
    tmp_path,
):
    """A stock ESP32 build has no version in its app descriptor: the board announces
    0xFFFFFFFF (unknown), never 0; after an update the port knows what it activated."""
    files = U.images(fake_app(V2, 20_000), V2)
    port, dbl = _board(tmp_path, files)
    port.version_unknown = True
    H.run(port, _settled(port, V2))
    announced = [e[1] for e in dbl.events if e[0] == "announce"]
    assert announced[0] == 0xFFFFFFFF and announced[-1] == V2, announced
    assert _agent_state(port)["floor"] == V2
    assert {(al.version, al.result) for al, ok in dbl.alerts} == {(V2, 0)}


def test_the_floor_persisted_at_activation_refuses_what_an_unknown_version_would_let_in(
    tmp_path,
):
    """Anti-rollback fails closed: with the running version unknown, offers are judged
    against the floor of the last confirmed activation, not against 0."""
    store = U.store(extra={"agent.json": {"floor": V2}})
    files = U.images(fake_app(V2, 20_000), V2)
    port, dbl = _board(tmp_path, files, store=store)
    port.version_unknown = True
    a = H.run(port, lambda a: port.clock > 30_000)
    assert port.boots == [] and a.client.st == 0
    assert any("ignored" in m for m in port.logs), port.logs


def test_the_agent_loop_feeds_the_watchdog(tmp_path):
    files = U.images(fake_app(V2, 20_000), V2)
    port, dbl = _board(tmp_path, files)
    H.run(port, lambda a: port.clock > 5_000)
    assert port.feeds > 10


def test_unacknowledged_alerts_back_off_to_a_ceiling_and_reach_a_ch_that_acks(tmp_path):
    # A CH without our manufacturer frames never acknowledges: each alert is re-sent at 15,
    # 30, 60 ... s intervals, capped at 64 x 15 s, and still delivered once a CH acks.
    port, dbl = _board(tmp_path, U.images(fake_app(V2, 20_000), V2))
    dbl.ack_alerts = False
    seen: list[tuple[int, int]] = []  # (board ms, alert counter)
    real = dbl._alert  # noqa: SLF001

    def spy(a):
        seen.append((port.clock, a.counter))
        return real(a)

    dbl._alert = spy  # noqa: SLF001
    a = H.run(port, lambda a: port.running_version() == V2 and seen)
    rebooted = port.clock
    retry = a.policy.cfg["alert_retry_s"] * 1000
    a = H.run(port, lambda a: port.clock > rebooted + 4 * 3600 * 1000, agent=a,
              limit_ms=5 * 3600 * 1000)  # fmt: skip
    first = [t for t, c in seen if c == seen[0][1]]
    in_95s = [t for t in first if t - first[0] <= 95_000]
    assert len(in_95s) <= 4, in_95s
    gaps = [b - a for a, b in zip(first, first[1:])]  # noqa: B905
    want = [min(retry << i, retry * 64) for i in range(len(gaps))]
    assert all(abs(g - w) <= 1000 for g, w in zip(gaps, want)), (gaps, want)  # noqa: B905
    assert gaps[-1] >= retry * 64 - 1000  # at the ceiling, not beyond
    assert a.state.get("alerts")  # never acknowledged: kept
    dbl.ack_alerts = True  # a CH that acknowledges appears
    H.run(port, lambda a: not a.state.get("alerts"), agent=a, limit_ms=retry * 64 + 5000)
