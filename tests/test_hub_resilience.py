"""Bad input and interruptions: hub restart mid-transfer, garbage, a link that goes away,
device-reported failures, held activation."""

from __future__ import annotations

import asyncio

import pytest
from hanota.hub import HubError
from hanota.hub.clock import HOLD
from hanota.rig import factory
from otaclient import link, zcl
from test_hub_core import SUPS, V1, V2, Rig, kinds, make_hub, run, trusted  # noqa: F401 (autouse)


@pytest.fixture(scope="module")
def dev():
    return factory.device("sim-ppmid", SUPS, seed="hub-resilience", short_addr=9)


def test_hub_restarted_mid_transfer_resumes_at_the_next_fragment(tmp_path, dev, frag2):
    eui = dev[1]["eui64"]
    hub = make_hub(tmp_path)
    hub.enrol(dev[1])

    async def first():
        async with Rig(hub, dev) as rig:
            hub.submit("supplier-a", [eui], frag2)
            rsp = await rig.client.query()
            await rig.client.fetch(rsp)
            await rig.client.end(zcl.REQUIRE_MORE_IMAGE, rsp)
            await rig.client.recv(zcl.DefaultRsp)

    run(first())
    hub.close()
    hub2 = make_hub(tmp_path)  # a new process would replay the same log
    t = hub2.transfer(eui)
    assert t is not None and t.held == {0} and t.state == "transferring"

    async def second():
        async with Rig(hub2, dev) as rig:
            rig.client.suppliers = ["supplier-a"]
            rsp = await rig.client.query()
            assert rsp.size == frag2[1].stat().st_size
            assert await rig.client.fetch(rsp) == frag2[1].read_bytes()
            await rig.client.end(zcl.SUCCESS, rsp)
            assert (await rig.client.recv(zcl.UpgradeEndRsp)).version == V2

    run(second())
    assert hub2.transfer(eui).state == "complete"
    hub2.close()


@pytest.mark.bad_input("unknown-command")
def test_garbage_and_malformed_zcl_get_errors_not_a_crash(dev, frag2):
    hub = make_hub()
    hub.enrol(dev[1])

    async def go():
        async with Rig(hub, dev) as rig:
            rig.client.send_raw(bytes(range(1, 200)) + b"\x00" + b"\xff" * 50 + b"\x00")
            bad = zcl.encode_frame(zcl.QUERY_NEXT_IMAGE_REQ, 5, b"\x01\x02", False)
            rig.client.send_raw(link.encode(dev[1]["short_addr"], 0, 1, bad))
            rsp = await rig.client.recv(zcl.DefaultRsp)
            assert rsp.status == zcl.MALFORMED_COMMAND
            unknown = zcl.encode_frame(0x55, 6, b"", False)
            rig.client.send_raw(link.encode(dev[1]["short_addr"], 0, 2, unknown))
            assert (await rig.client.recv(zcl.DefaultRsp)).status == zcl.UNSUP_CLUSTER_COMMAND
            hub.submit("supplier-a", [dev[1]["eui64"]], frag2)
            assert (await rig.client.query()).status == zcl.SUCCESS
            c = rig.session.counters()
            assert c["link_crc"] + c["link_short"] >= 1 and c["bad_frames"] == 2

    run(go())


def test_board_disappearing_mid_transfer_keeps_the_transfer(dev, frag2):
    hub = make_hub()
    hub.enrol(dev[1])
    eui = dev[1]["eui64"]

    async def go():
        async with Rig(hub, dev) as rig:
            hub.submit("supplier-a", [eui], frag2)
            rsp = await rig.client.query()
            rig.client.send(zcl.ImagePageReq(0, rsp.mfr, rsp.image_type, rsp.version, 0, 64,
                                             4096, 5, None))  # fmt: skip
            await rig.client.recv(zcl.ImageBlockRsp)
            rig.client.writer.close()  # cable pulled
            await asyncio.wait_for(rig.tasks[0], 5)
        assert eui not in hub.links and not hub.state.devices[eui].connected
        async with Rig(hub, dev) as rig:  # plugged back: the same transfer goes on
            rsp = await rig.client.query()
            assert await rig.client.fetch(rsp) == frag2[0].read_bytes()

    run(go())
    assert hub.transfer(eui).state == "transferring"


def test_invalid_image_is_a_transfer_failure_reason_3(dev, frag2):
    hub = make_hub()
    hub.enrol(dev[1])
    eui = dev[1]["eui64"]

    async def go():
        async with Rig(hub, dev) as rig:
            hub.submit("supplier-a", [eui], frag2)
            rsp = await rig.client.query()
            await rig.client.end(zcl.INVALID_IMAGE, rsp)
            await asyncio.sleep(0.1)

    run(go())
    hub.raise_due_alerts()
    fail = [a for a in hub.alerts() if a["kind"] == "transfer-failure"]
    assert fail[0]["reason_code"] == 3 and "INVALID_IMAGE" in fail[0]["reason"]
    assert hub.transfer(eui) is None
    assert hub.inventory()["devices"][0]["history"][-1]["outcome"] == "failed"


def test_held_activation_waits_then_activate_pushes_the_time(dev, frag2):
    hub = make_hub()
    hub.enrol(dev[1])
    eui = dev[1]["eui64"]

    async def go():
        async with Rig(hub, dev) as rig:
            res = hub.submit("supplier-a", [eui], frag2, activate_at="hold")
            for f in frag2:
                rsp = await rig.client.query()
                await rig.client.fetch(rsp)
                await rig.client.end(zcl.SUCCESS if f is frag2[-1] else zcl.REQUIRE_MORE_IMAGE,
                                     rsp)  # fmt: skip
            end = await rig.client.recv(zcl.UpgradeEndRsp)
            assert end.upgrade_time == HOLD
            await rig.client.end(zcl.SUCCESS, rsp)  # the client asks again while waiting
            assert (await rig.client.recv(zcl.UpgradeEndRsp)).upgrade_time == HOLD
            hub.activate(res["id"], "+1")
            end = await rig.client.recv(zcl.UpgradeEndRsp)
            assert end.upgrade_time - end.current_time in (0, 1, 2)

    run(go())
    assert hub.alerts(pending=True)  # confirmations scheduled after the due time


def test_same_supplier_replaces_its_own_unfetched_image(dev, frag2, imgs):
    hub = make_hub()
    hub.enrol(dev[1])
    eui = dev[1]["eui64"]
    first = hub.submit("supplier-a", [eui], frag2)
    v3 = imgs.build(0x03000000, board="sim-ppmid", size=4096, name="v3")
    second = hub.submit("supplier-a", [eui], v3)
    hub.raise_due_alerts()
    assert hub.transfer(eui).submission.id == second["id"] != first["id"]
    assert ("supplier-a", "transfer-failure") in kinds(hub)
    with pytest.raises(HubError, match="nothing of supplier-b"):
        hub.discard("supplier-b", devices=[eui])


def test_device_record_errors_are_clear():
    hub = make_hub()
    with pytest.raises(HubError, match="eui64"):
        hub.enrol({"eui64": "xyz"})
    _, rec = factory.device("sim-ppmid", ["s"], seed="r1", short_addr=3)
    hub.enrol(rec)
    _, other = factory.device("sim-ppmid", ["s"], seed="r2", short_addr=3)
    with pytest.raises(HubError, match="already"):
        hub.enrol(other)
    assert V1  # shared constant kept for readers
