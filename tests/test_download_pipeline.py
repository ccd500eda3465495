"""Pipelined Image Page Requests: the next page is asked before the current one is in.

The client side (download.Download, alone and in the agent on the modelled UART) and the
hub side (a pipelined page is served after the one before it, which ends at its end).
"""

from __future__ import annotations

import asyncio

import agent_util as U
import harness as H
import pytest
from fakes import fake_app
from hanota.rig import factory
from otaclient import download, policy, zcl
from test_hub_core import Rig, make_hub, run, trusted  # noqa: F401 (its hubs trust imgs' key)

MFR, TYPE, VER = 0x1234, 0x84, 0x01000100
B = policy.DEFAULTS["max_block"]  # 254: a block's largest data (0xFF is ZCL's invalid length)
PAGE = 4096 // B * B  # the client's page: whole blocks


@pytest.fixture(scope="module")
def dev():
    return factory.device("sim-ppmid", ["supplier-a"], seed="pipeline", short_addr=7)


class _Recorder:
    """A Download with its requests decoded as they go out."""

    def __init__(self, size, **cfg):
        c = dict(policy.DEFAULTS)
        c.update(cfg)
        self.asked = []  # (offset, length) of each page request, in order
        self.fed = bytearray()
        offer = (zcl.SUCCESS, MFR, TYPE, VER, size)
        self.dl = download.Download(self._send, offer, self.fed.extend, c)
        self.size = size

    def _send(self, cmd, payload):
        assert cmd == zcl.IMAGE_PAGE_REQ
        r = zcl.decode_command(cmd, payload, False)
        self.asked.append((r.offset, r.page_size))

    def block(self, off, n=B, now=0):
        data = bytes((off + i) & 0xFF for i in range(min(n, self.size - off)))
        rsp = zcl.ImageBlockRsp(zcl.SUCCESS, MFR, TYPE, VER, off, data, None, None, None)
        self.dl.on_block(rsp, now)

    def asked_end(self):
        return max(o + n for o, n in self.asked)


def test_next_page_is_asked_while_half_the_current_page_is_to_come():
    r = _Recorder(20_000)
    r.dl.start(0)
    assert r.asked == [(0, PAGE)]
    for k in range(PAGE // B - 1):  # every block of page 1 but its last
        r.block(k * B)
        assert len(r.asked) == (2 if PAGE - r.dl.offset <= PAGE // 2 else 1), r.dl.offset
    assert r.asked == [(0, PAGE), (PAGE, PAGE)]
    ahead = []  # (end of what is asked, how much of it is not in yet) after each block
    while r.dl.state == download.RUNNING:
        r.block(r.dl.offset)
        ahead.append((r.asked_end(), r.asked_end() - r.dl.offset))
    assert r.dl.state == download.DONE and bytes(r.fed) == bytes(i & 0xFF for i in range(20_000))
    # pages are contiguous, each asked once, the last one ends at the file's end
    assert [o for o, _ in r.asked] == [k * PAGE for k in range(len(r.asked))]
    assert r.asked[-1] == ((len(r.asked) - 1) * PAGE, 20_000 - (len(r.asked) - 1) * PAGE)
    # more than half a page outstanding until the file's end is asked, never more than
    # a page and a half
    assert all(a <= PAGE + PAGE // 2 for _, a in ahead)
    assert all(a > PAGE // 2 for end, a in ahead if end < 20_000)


def test_pipelining_stops_at_the_pause_and_goes_on_after_it():
    # the head is fetched alone (start(now, stop)): nothing beyond it is asked before the
    # client has authenticated it
    r = _Recorder(20_000)
    r.dl.start(0, 286)
    assert r.asked == [(0, 286)]
    r.block(0)
    r.block(B, 286 - B)
    assert r.dl.state == download.PAUSED and r.asked == [(0, 286)]
    r.dl.start(0)
    assert r.asked[-1] == (286, PAGE)
    for _ in range(8):
        r.block(r.dl.offset)
    assert r.asked[-1] == (286 + PAGE, PAGE)


def test_a_gap_re_requests_from_it_and_pipelining_goes_on_from_there():
    r = _Recorder(40_000)
    r.dl.start(0)
    for k in range(10):
        r.block(k * B)
    assert r.asked == [(0, PAGE), (PAGE, PAGE)]
    lost = 10 * B
    r.block(lost + B)  # the block at `lost` never came
    assert r.asked[-1] == (lost, PAGE) and r.dl.stats[2] == 1
    for off in range(lost + 2 * B, 2 * PAGE, B):  # the rest of the old stream: dropped
        r.block(off)
    assert len(r.asked) == 3 and r.dl.offset == lost
    for _ in range(8):  # the stream from the gap
        r.block(r.dl.offset)
    assert r.asked[-1] == (lost + PAGE, PAGE)


def test_silence_re_requests_one_page_from_the_first_missing_byte():
    r = _Recorder(40_000)
    r.dl.start(0)
    for k in range(12):
        r.block(k * B, now=k)
    assert r.dl.poll(1000) == download.RUNNING and len(r.asked) == 2
    r.dl.poll(12 + policy.DEFAULTS["block_timeout_ms"])
    assert r.asked[-1] == (12 * B, PAGE)


def test_agent_reaches_088_of_line_rate_at_921600_with_2ms_latency(tmp_path):
    """Image bytes per second over line rate on the modelled full-duplex UART at the
    fastest UART profile: no round trip idles the line between pages."""
    files = U.images(fake_app(VER, 200_000), VER)
    port, dbl = H.make(str(tmp_path), files, U.store(), baud=921600, latency_ms=2.0)
    t = {}
    H.run(port, lambda a: a.client.st == 2 and t.setdefault("start", port.clock) is not None)
    H.run(port, lambda a: a.client.st == 3)
    rate = dbl.bytes / ((port.clock - t["start"]) / 1000) / 92160
    assert rate >= 0.88, rate


def test_hub_serves_a_pipelined_page_after_the_one_before_it(dev, frag2):
    """Two page requests, the second from where the first ends, sent together: every
    block of both comes in order, the first page's last one cut at its end (the block
    size does not divide it), nothing dropped or sent twice."""
    hub = make_hub()
    hub.enrol(dev[1])
    eui = dev[1]["eui64"]
    page = 1000

    async def go():
        async with Rig(hub, dev) as rig:
            hub.submit("supplier-a", [eui], frag2)
            rsp = await rig.client.query()
            for off in (0, page):
                rig.client.send(zcl.ImagePageReq(0, rsp.mfr, rsp.image_type, rsp.version,
                                                 off, B, page, 0, None))  # fmt: skip
            got = []
            while sum(len(b.data) for b in got) < 2 * page:
                b = await rig.client.recv(zcl.ImageBlockRsp)
                assert b.status == zcl.SUCCESS
                got.append(b)
            await asyncio.sleep(0.3)
            return got, rig.client.inbox.qsize()

    got, extra = run(go())
    assert extra == 0
    assert [(b.offset, len(b.data)) for b in got] == [
        (0, 254), (254, 254), (508, 254), (762, 238),
        (1000, 254), (1254, 254), (1508, 254), (1762, 238),
    ]  # fmt: skip
    assert b"".join(b.data for b in got) == frag2[0].read_bytes()[: 2 * page]


def test_hub_drops_a_queued_page_when_the_device_asks_from_elsewhere(dev, frag2):
    """A page request that does not continue the last one (a gap's re-request) ends the
    pages still queued: the device gets the stream from its gap, not the stale page."""
    hub = make_hub()
    hub.enrol(dev[1])
    eui = dev[1]["eui64"]

    async def go():
        async with Rig(hub, dev) as rig:
            hub.submit("supplier-a", [eui], frag2)
            rsp = await rig.client.query()
            for off in (0, 8 * B, 2 * B):  # page 1, its continuation, then a gap
                rig.client.send(zcl.ImagePageReq(0, rsp.mfr, rsp.image_type, rsp.version,
                                                 off, B, 8 * B, 0, None))  # fmt: skip
            offs = []
            while not offs or offs[-1] != 2 * B + 7 * B:
                offs.append((await rig.client.recv(zcl.ImageBlockRsp)).offset)
            await asyncio.sleep(0.2)
            return offs, rig.client.inbox.qsize()

    offs, left = run(go())
    # what page 1 sent before the re-request was read (nothing, or its first blocks),
    # then the stream from the gap; none of page 2 (from 8 to 16 blocks)
    i = len(offs) - 8
    assert offs[i:] == list(range(2 * B, 10 * B, B)) and left == 0
    assert offs[:i] == list(range(0, B * i, B)) and i <= 8
