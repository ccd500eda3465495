"""The hub's OTA server against a scripted client double over a socket pair (in process)."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import pytest
from hanota.hub import Hub, HubConfig, HubError
from hanota.hub.events import read_events
from hanota.hub.server import LinkSession
from hanota.rig import factory
from hanota.rig.double import ClientDouble
from otaclient import zcl

V1, V2 = 0x01000000, 0x02000000
SUPS = ["supplier-a", "supplier-b"]
TRUST: list[Path] = []  # the manufacturer keys make_hub's hubs trust (fixture `trusted`)


@pytest.fixture(autouse=True)
def trusted(imgs):
    """Hubs made by make_hub verify submissions against the test images' key."""
    TRUST[:] = [imgs.pub_path]


@pytest.fixture(scope="module")
def dev():
    return factory.device("sim-ppmid", SUPS, seed="hub-core", short_addr=7)


def make_hub(tmp_path: Path | None = None, **cfg) -> Hub:
    cfg.setdefault("confirm_delay_s", 0.2)
    hub = Hub(HubConfig(**cfg), state_dir=tmp_path)
    for key in TRUST:
        hub.add_anchor(key)
    return hub


class Rig:
    """A hub with its alert loop and one linked client double."""

    def __init__(self, hub: Hub, dev, version: int = V1):
        self.hub, (self.ident, self.rec) = hub, dev
        self.version = version

    async def __aenter__(self):
        a, b = socket.socketpair()
        hr, hw = await asyncio.open_connection(sock=a)
        cr, cw = await asyncio.open_connection(sock=b)
        r = self.rec
        self.session = LinkSession(self.hub, "pair", hr, hw, r["eui64"])
        self.tasks = [asyncio.create_task(self.session.run()),
                      asyncio.create_task(self.hub.alert_loop())]  # fmt: skip
        self.client = ClientDouble(cr, cw, r["eui64"], r["short_addr"], self.ident.device_key,
                                   r["manufacturer_code"], r["image_type"], r["hw_version"],
                                   self.version, r["suppliers"])  # fmt: skip
        return self

    async def __aexit__(self, *exc):
        self.client.close()
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def settle(self, timeout: float = 5.0) -> None:
        for _ in range(int(timeout / 0.05)):
            if self.hub.settled():
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"hub not settled: {self.hub.inventory()}")


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def kinds(hub: Hub, supplier: str | None = None) -> list[tuple[str, str]]:
    return [(a["supplier"], a["kind"]) for a in hub.alerts(supplier)]


def test_fragmented_update_end_to_end_alerts_each_supplier(dev, frag2):
    hub = make_hub()
    hub.enrol(dev[1])

    async def go():
        async with Rig(hub, dev) as rig:
            await rig.client.announce()
            await asyncio.sleep(0.05)
            res = hub.submit("supplier-a", [dev[1]["eui64"]], frag2)
            assert res["accepted"] == [dev[1]["eui64"]] and res["fragments"] == 2
            got = await rig.client.update()
            assert got == [p.read_bytes() for p in frag2]
            await rig.settle()

    run(go())
    k = kinds(hub)
    assert k.count(("supplier-a", "submission-processed")) == 1
    assert k.count(("supplier-a", "transfer-success")) == 1
    for s in SUPS:
        assert k.count((s, "activation")) == 1
        assert k.count((s, "version-confirmation")) == 1
    conf = [a for a in hub.alerts() if a["kind"] == "version-confirmation"]
    assert all(a["version"] == V2 and a["matches"] for a in conf), json.dumps(conf)
    inv = hub.inventory()["devices"][0]
    assert inv["version"] == V2 and inv["in_progress"] is None
    assert inv["history"][-1]["outcome"] == "success"


@pytest.mark.parametrize(
    "case, error",
    [
        ("unknown", "unknown device"),
        ("supplier", "does not serve"),
        ("malformed", "malformed OTA file"),
        ("incomplete", "do not form the set"),
        pytest.param("type", "image type", marks=pytest.mark.bad_input("wrong-mfr-or-type")),
    ],
)
def test_submission_refused_with_clear_error(tmp_path, dev, frag2, imgs, case, error):
    hub = make_hub()
    hub.enrol(dev[1])
    eui, sup, files = dev[1]["eui64"], "supplier-a", list(frag2)
    if case == "unknown":
        eui = "00112233445566ff"
    elif case == "supplier":
        sup = "supplier-z"
    elif case == "malformed":
        bad = tmp_path / "bad.zigbee"
        bad.write_bytes(b"\x1e\xf1\xee\x0b" + bytes(200))
        files = [bad]
    elif case == "incomplete":
        files = files[1:]
    elif case == "type":
        files = imgs.build(V2, board="sim-ihd", size=4096)
    with pytest.raises(HubError, match=error):
        hub.submit(sup, [eui], files)
    assert hub.state.active(dev[1]["eui64"]) is None


@pytest.mark.bad_input("oversized-fragment")
def test_file_over_750000_bytes_is_refused(tmp_path, dev, imgs):
    hub = make_hub()
    hub.enrol(dev[1])
    big = imgs.build(V2, board="sim-ppmid", size=760000, max_size=800000, name="big")
    with pytest.raises(HubError, match="over the 750000-byte limit"):
        hub.submit("supplier-a", [dev[1]["eui64"]], big)


@pytest.mark.bad_input("hw-version")
def test_hardware_mismatch_alerts_reason_2(dev, imgs):
    hub = make_hub()
    hub.enrol(dev[1])
    files = imgs.build(V2, board="sim-ppmid", size=4096, hw_min=0x200, hw_max=0x2FF, name="hw")
    with pytest.raises(HubError, match="hardware version 0x0100"):
        hub.submit("supplier-a", [dev[1]["eui64"]], files)
    hub.raise_due_alerts()
    fail = [a for a in hub.alerts() if a["kind"] == "transfer-failure"]
    assert fail and fail[0]["reason_code"] == 2 and fail[0]["alert_code"] == 0x8F89


def test_second_supplier_is_refused_and_both_are_told(dev, frag2):
    hub = make_hub()
    hub.enrol(dev[1])
    eui = dev[1]["eui64"]
    hub.submit("supplier-a", [eui], frag2)
    with pytest.raises(HubError, match="R2"):
        hub.submit("supplier-b", [eui], frag2)
    hub.raise_due_alerts()
    assert ("supplier-a", "conflict") in kinds(hub)
    refused = [a for a in hub.alerts("supplier-b") if a["kind"] == "submission-processed"]
    assert refused[0]["status"] == "refused"
    assert hub.state.active(eui).submission.supplier == "supplier-a"


def test_discard_during_transfer_aborts_and_alerts_reason_1(dev, frag2):
    hub = make_hub()
    hub.enrol(dev[1])
    eui = dev[1]["eui64"]

    async def go():
        async with Rig(hub, dev) as rig:
            hub.submit("supplier-a", [eui], frag2)
            rsp = await rig.client.query()
            rig.client.send(zcl.ImageBlockReq(0, rsp.mfr, rsp.image_type, rsp.version, 0, 64,
                                              None, None))  # fmt: skip
            assert (await rig.client.recv(zcl.ImageBlockRsp)).status == zcl.SUCCESS
            hub.discard("supplier-a", devices=[eui])
            rig.client.send(zcl.ImageBlockReq(0, rsp.mfr, rsp.image_type, rsp.version, 64, 64,
                                              None, None))  # fmt: skip
            assert (await rig.client.recv(zcl.ImageBlockRsp)).status == zcl.ABORT
            assert (await rig.client.query()).status == zcl.NO_IMAGE_AVAILABLE
            await asyncio.sleep(0.05)

    run(go())
    fail = [a for a in hub.alerts() if a["kind"] == "transfer-failure"]
    assert fail[0]["reason_code"] == 1 and fail[0]["supplier"] == "supplier-a"


def test_meter_upgrade_answers_wait_for_data(dev, frag2):
    hub = make_hub(meter_wait_s=7)
    hub.enrol(dev[1])
    eui = dev[1]["eui64"]

    async def go():
        async with Rig(hub, dev) as rig:
            hub.submit("supplier-a", [eui], frag2)
            rsp = await rig.client.query()
            hub.meter_upgrade(None, True)
            rig.client.send(zcl.ImagePageReq(0, rsp.mfr, rsp.image_type, rsp.version, 0, 64,
                                             1024, 0, None))  # fmt: skip
            w = await rig.client.recv(zcl.ImageBlockRsp)
            assert w.status == zcl.WAIT_FOR_DATA and w.request_time - w.current_time == 7
            hub.meter_upgrade(None, False)
            data = await rig.client.fetch(rsp)
            assert data == frag2[0].read_bytes()

    run(go())


def test_bad_activation_signature_is_logged_not_forwarded(tmp_path, dev):
    hub = make_hub(tmp_path)
    hub.enrol(dev[1])

    async def go():
        async with Rig(hub, dev) as rig:
            rig.client.alert("supplier-a", V2, 0, bad_sig=True)
            with pytest.raises(TimeoutError):
                await rig.client.recv(zcl.AlertAck, timeout=0.5)
            rig.client.alert("supplier-a", V2, 0)
            assert (await rig.client.recv(zcl.AlertAck)).counter == 2

    run(go())
    hub.raise_due_alerts()
    assert [a["counter"] for a in hub.alerts() if a["kind"] == "activation"] == [2]
    evs = [e for e in read_events(tmp_path / "events.jsonl") if e["kind"] == "activation-alert"]
    assert evs[0]["valid"] is False and "bad signature" in evs[0]["error"]
    assert evs[1]["valid"] is True
