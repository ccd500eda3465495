"""A board that stops asking for blocks mid-transfer: after the hub's stall timeout its
supplier gets a CCS08-like transfer-failure alert (reason 3), the inventory shows the
transfer `stalled`, and when the board comes back the same transfer resumes."""

from __future__ import annotations

import asyncio
import time

import pytest
from hanota.hub import HubConfig, HubError
from hanota.hub.events import read_events
from hanota.rig import factory
from otaclient import zcl
from test_hub_core import SUPS, V2, Rig, make_hub, run, trusted  # noqa: F401 (autouse)


@pytest.fixture(scope="module")
def dev():
    return factory.device("sim-ppmid", SUPS, seed="hub-stall", short_addr=11)


def failures(hub):
    return [a for a in hub.alerts() if a["kind"] == "transfer-failure"]


async def _wait(pred, timeout=5.0):
    end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < end, "timed out"
        await asyncio.sleep(0.05)


async def _start_then_go_silent(rig, frag2):
    """Query, take a few blocks of the first fragment, then say nothing more."""
    rsp = await rig.client.query()
    assert rsp.status == zcl.SUCCESS and rsp.size == frag2[0].stat().st_size
    rig.client.send(zcl.ImageBlockReq(0, rsp.mfr, rsp.image_type, rsp.version, 0, 64, None, None))
    assert (await rig.client.recv(zcl.ImageBlockRsp)).status == zcl.SUCCESS
    return rsp


def test_silent_board_gets_a_stall_alert_and_resumes(tmp_path, dev, frag2):
    hub = make_hub(tmp_path, stall_timeout_s=0.6)
    hub.enrol(dev[1])
    eui = dev[1]["eui64"]

    async def go():
        async with Rig(hub, dev) as rig:
            hub.submit("supplier-a", [eui], frag2)
            await _start_then_go_silent(rig, frag2)
            t0 = time.monotonic()
            await _wait(lambda: failures(hub), 5)
            assert time.monotonic() - t0 >= 0.5  # not before the timeout
            [a] = failures(hub)
            assert a["supplier"] == "supplier-a" and a["reason_code"] == 3
            assert a["alert_code"] == 0x8F89 and "stalled" in a["reason"] and a["version"] == V2
            inv = hub.inventory()["devices"][0]
            assert inv["in_progress"]["state"] == "stalled" and inv["in_progress"]["stalls"] == 1
            assert inv["history"][-1]["outcome"] == "stalled"
            await asyncio.sleep(1.0)  # still silent: one alert per silence, not one per tick
            assert len(failures(hub)) == 1
            # the board comes back: the same transfer, from the first fragment not held
            rig.client.suppliers = ["supplier-a"]
            rsp = await rig.client.query()
            assert hub.transfer(eui).state == "transferring"
            assert await rig.client.fetch(rsp) == frag2[0].read_bytes()
            await rig.client.end(zcl.REQUIRE_MORE_IMAGE, rsp)
            await rig.client.recv(zcl.DefaultRsp)
            rsp = await rig.client.query()
            assert await rig.client.fetch(rsp) == frag2[1].read_bytes()
            await rig.client.end(zcl.SUCCESS, rsp)
            assert (await rig.client.recv(zcl.UpgradeEndRsp)).version == V2
            await _wait(lambda: any(a["kind"] == "transfer-success" for a in hub.alerts()))

    run(go())
    assert hub.transfer(eui).state == "complete" and hub.transfer(eui).stalls == 1
    kinds = [e["kind"] for e in read_events(tmp_path / "events.jsonl")]
    assert kinds.index("transfer-stalled") < kinds.index("transfer-resumed")
    hub.close()
    again = make_hub(tmp_path)  # the stall is in the log: a restarted hub knows it
    hist = again.inventory()["devices"][0]["history"]
    assert [h["outcome"] for h in hist] == ["stalled"] and again.transfer(eui).stalls == 1
    again.close()


def test_pulled_cable_stalls_every_silent_device_for_its_own_supplier(dev, frag2, imgs):
    other = factory.device("sim-ppmid", ["supplier-b"], seed="hub-stall-2", short_addr=12)
    hub = make_hub(stall_timeout_s=0.5)
    hub.enrol(dev[1])
    hub.enrol(other[1])

    async def go():
        async with Rig(hub, dev) as r1, Rig(hub, other) as r2:
            hub.submit("supplier-a", [dev[1]["eui64"]], frag2)
            hub.submit("supplier-b", [other[1]["eui64"]], frag2)
            await _start_then_go_silent(r1, frag2)
            await _start_then_go_silent(r2, frag2)
            r1.client.writer.close()  # cable pulled: the link goes down as well
            await _wait(lambda: len(failures(hub)) == 2, 5)

    run(go())
    got = sorted((a["supplier"], a["device"]) for a in failures(hub))
    assert got == sorted([("supplier-a", dev[1]["eui64"]), ("supplier-b", other[1]["eui64"])])


def test_a_slow_but_alive_board_does_not_stall(dev, frag2):
    hub = make_hub(stall_timeout_s=1.0)
    hub.enrol(dev[1])

    async def go():
        async with Rig(hub, dev) as rig:
            hub.submit("supplier-a", [dev[1]["eui64"]], frag2)
            rsp = await _start_then_go_silent(rig, frag2)
            for off in range(64, 64 * 12, 64):  # a block every 0.25 s: slow, alive
                await asyncio.sleep(0.25)
                rig.client.send(zcl.ImageBlockReq(0, rsp.mfr, rsp.image_type, rsp.version,
                                                  off, 64, None, None))  # fmt: skip
                await rig.client.recv(zcl.ImageBlockRsp)

    run(go())
    assert not failures(hub) and hub.transfer(dev[1]["eui64"]).state == "transferring"


def test_stall_timer_off_and_bad_value(dev, frag2):
    hub = make_hub(stall_timeout_s=0)
    hub.enrol(dev[1])

    async def go():
        async with Rig(hub, dev) as rig:
            hub.submit("supplier-a", [dev[1]["eui64"]], frag2)
            await _start_then_go_silent(rig, frag2)

    run(go())
    assert hub.check_stalls(now=time.time() + 10_000) == [] and not failures(hub)
    hub.config.stall_timeout_s = 60  # a transfer replayed from a log times from hub start
    assert hub.check_stalls(now=time.time() + 59) == []
    assert len(hub.check_stalls(now=time.time() + 61)) == 1
    with pytest.raises(HubError, match="stall timeout"):
        HubConfig(stall_timeout_s=-1)
