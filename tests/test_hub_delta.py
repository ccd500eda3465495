"""The hub with delta submissions, in process: which files a submission may hold, which
image each device is served (the delta from the version it queries with, else the full
image), the fall-back after a refused delta, and what suppliers and inventory are told."""

from __future__ import annotations

import hashlib

import pytest
from hanota.hub import Hub, HubConfig, HubError
from hanota.hub.view import inventory_lines
from hanota.rig import factory
from otaclient import zcl

V0, V1, V2 = 0x00FF0000, 0x01000000, 0x02000000
SUP = "supplier-a"
_rng = __import__("random").Random(18)
BASE = _rng.randbytes(30_000)
OTHER_BASE = _rng.randbytes(30_000)
TARGET = BASE[:12_000] + b"new module" * 40 + BASE[12_000:]


@pytest.fixture(scope="module")
def dev():
    return factory.device("sim-ppmid", [SUP], seed="hub-delta", short_addr=9)


@pytest.fixture(scope="module")
def files(imgs):
    """Full image (2 fragments) of TARGET at V2, deltas to it from V1 and from V0."""
    full = imgs.build(V2, board="sim-ppmid", payload=TARGET, max_size=20_000, name="full")
    d1 = imgs.build(V2, board="sim-ppmid", payload=TARGET, base=BASE, base_version=V1,
                    name="d1")  # fmt: skip
    d0 = imgs.build(V2, board="sim-ppmid", payload=TARGET, base=OTHER_BASE, base_version=V0,
                    name="d0")  # fmt: skip
    return {"full": full, "d1": d1, "d0": d0}


def make_hub(imgs, dev) -> tuple[Hub, str]:
    hub = Hub(HubConfig(confirm_delay_s=0.1))
    hub.add_anchor(imgs.pub_path)
    hub.enrol(dev[1])
    return hub, dev[1]["eui64"]


def query(hub: Hub, eui: str, version: int):
    rec = hub.state.devices[eui].record
    return hub.ota.query(eui, zcl.QueryNextImageReq(1, rec.manufacturer_code,
                                                    rec.image_type, version, None))  # fmt: skip


def fetch(hub: Hub, eui: str, size: int) -> bytes:
    """Every block of the file the device is being served (as the agent asks for them)."""
    rec, out = hub.state.devices[eui].record, b""
    while len(out) < size:
        req = zcl.ImageBlockReq(
            0, rec.manufacturer_code, rec.image_type, V2, len(out), 255, None, None
        )
        rsp = hub.ota.block(eui, req, len(out), 255)
        assert rsp.status == zcl.SUCCESS
        out += rsp.data
    return out


def end(hub: Hub, eui: str, status: int) -> list:
    rec = hub.state.devices[eui].record
    return hub.ota.upgrade_end(eui, zcl.UpgradeEndReq(status, rec.manufacturer_code,
                                                      rec.image_type, V2))  # fmt: skip


def test_submission_of_full_image_and_two_deltas_is_accepted_in_order(imgs, dev, files):
    hub, eui = make_hub(imgs, dev)
    res = hub.submit(SUP, [eui], files["d1"] + files["full"] + files["d0"])
    assert res["fragments"] == 2
    assert [d["base_version"] for d in res["deltas"]] == [V0, V1]
    sub = hub.state.submissions[res["id"]]
    assert [f.index for f in sub.full] == [0, 1]
    assert sub.delta_from(V1).delta["target_sha256"] == hashlib.sha256(TARGET).hexdigest()
    assert sub.delta_from(0x12345678) is None


def test_device_on_a_delta_base_gets_that_delta_others_the_full_image(imgs, dev, files):
    hub, eui = make_hub(imgs, dev)
    hub.submit(SUP, [eui], files["full"] + files["d1"] + files["d0"])
    rsp = query(hub, eui, V1)
    d1 = files["d1"][0].read_bytes()
    assert rsp.status == zcl.SUCCESS and rsp.size == len(d1)
    assert fetch(hub, eui, rsp.size) == d1
    hub2, eui2 = make_hub(imgs, dev)
    hub2.submit(SUP, [eui2], files["full"] + files["d1"])
    rsp = query(hub2, eui2, 0x01000005)  # no delta from this version
    assert rsp.size == files["full"][0].stat().st_size
    assert fetch(hub2, eui2, rsp.size) == files["full"][0].read_bytes()
    t = hub2.transfer(eui2)
    assert t.to_json()["image"] == "full" and t.to_json()["fragment_count"] == 2


def test_delta_delivered_is_told_to_the_supplier_and_shown_in_inventory(imgs, dev, files):
    hub, eui = make_hub(imgs, dev)
    hub.submit(SUP, [eui], files["full"] + files["d1"])
    size = query(hub, eui, V1).size
    fetch(hub, eui, size)
    inv = hub.inventory()["devices"][0]["in_progress"]
    assert (inv["image"], inv["delta_base_version"], inv["image_bytes"]) == ("delta", V1, size)
    assert inv["firmware_bytes"] == len(TARGET) and inv["fragment_count"] == 1
    assert any("as a delta from 0x01000000" in ln for ln in inventory_lines(hub.inventory()))
    rsp = end(hub, eui, zcl.SUCCESS)
    assert isinstance(rsp[0], zcl.UpgradeEndRsp) and rsp[0].version == V2
    hub.raise_due_alerts(now=float("inf"))
    ok = [a for a in hub.alerts(SUP) if a["kind"] == "transfer-success"]
    assert ok and ok[0]["image"] == "delta" and ok[0]["delta_base_version"] == V1
    assert ok[0]["image_bytes"] == size and ok[0]["firmware_bytes"] == len(TARGET)


def test_refused_delta_falls_back_to_the_full_image_on_the_next_query(imgs, dev, files):
    hub, eui = make_hub(imgs, dev)
    hub.submit(SUP, [eui], files["full"] + files["d1"])
    d1 = files["d1"][0].read_bytes()
    assert query(hub, eui, V1).size == len(d1)
    fetch(hub, eui, 200)  # the descriptor arrives, the device finds its slot is not the base
    rsp = end(hub, eui, zcl.INVALID_IMAGE)
    assert [type(r) for r in rsp] == [zcl.ImageNotify]  # "ask again"
    t = hub.transfer(eui)
    assert t.state == "transferring" and t.refused == {V1}
    assert [type(r) for r in end(hub, eui, zcl.INVALID_IMAGE)] == [zcl.ImageNotify]  # a copy
    assert t.state == "transferring"
    full0 = files["full"][0].read_bytes()
    assert query(hub, eui, V1).size == len(full0)  # same version: the full image now
    assert fetch(hub, eui, len(full0)) == full0
    assert t.to_json()["deltas_refused"] == [V1]
    assert any("refused the delta from 0x01000000" in ln
               for ln in inventory_lines(hub.inventory()))  # fmt: skip
    end(hub, eui, zcl.REQUIRE_MORE_IMAGE)
    full1 = files["full"][1].read_bytes()
    assert query(hub, eui, V1).size == len(full1)
    assert fetch(hub, eui, len(full1)) == full1
    end(hub, eui, zcl.SUCCESS)
    hub.raise_due_alerts(now=float("inf"))
    ok = [a for a in hub.alerts(SUP) if a["kind"] == "transfer-success"][0]
    assert ok["image"] == "full" and ok["deltas_refused"] == [V1]
    assert ok["image_bytes"] == len(full0) + len(full1)


def test_choice_is_replayed_from_the_event_log(imgs, dev, files, tmp_path):
    hub = Hub(HubConfig(), state_dir=tmp_path)
    hub.add_anchor(imgs.pub_path)
    hub.enrol(dev[1])
    eui = dev[1]["eui64"]
    hub.submit(SUP, [eui], files["full"] + files["d1"])
    query(hub, eui, V1)
    end(hub, eui, zcl.INVALID_IMAGE)
    query(hub, eui, V1)
    hub.close()
    again = Hub(HubConfig(), state_dir=tmp_path)
    t = again.transfer(eui)
    assert (t.delta_base, t.chosen, t.refused) == (None, True, {V1})
    assert again.ota.file_size(eui) == files["full"][0].stat().st_size
    again.close()


def test_delta_only_submission_fails_cleanly_for_a_device_on_another_version(imgs, dev, files):
    hub, eui = make_hub(imgs, dev)
    hub.submit(SUP, [eui], files["d1"])
    assert hub.ota.offer(eui) is not None  # before the query, the image is still offered
    rsp = query(hub, eui, 0x01000007)
    assert rsp.status == zcl.NO_IMAGE_AVAILABLE
    t = hub.state.transfers[(hub.state.devices[eui].history[-1]["submission"], eui)]
    assert t.state == "failed"
    assert "deltas from 0x01000000 only" in hub.state.devices[eui].history[-1]["reason"]


def test_delta_only_submission_refused_delta_fails_the_transfer(imgs, dev, files):
    hub, eui = make_hub(imgs, dev)
    hub.submit(SUP, [eui], files["d1"])
    query(hub, eui, V1)
    assert end(hub, eui, zcl.INVALID_IMAGE) == []
    h = hub.state.devices[eui].history[-1]
    assert h["outcome"] == "failed" and "holds no full image" in h["reason"]
    assert h["deltas_refused"] == [V1]


def test_submission_refuses_deltas_that_make_another_firmware(imgs, dev, files):
    hub, eui = make_hub(imgs, dev)
    other = imgs.build(V2, board="sim-ppmid", payload=TARGET + b"x", base=BASE,
                       base_version=V1, name="d1-other")  # fmt: skip
    with pytest.raises(HubError, match="makes another firmware"):
        hub.submit(SUP, [eui], files["full"] + other)


def test_submission_refuses_two_deltas_from_one_base(imgs, dev, files):
    hub, eui = make_hub(imgs, dev)
    again = imgs.build(V2, board="sim-ppmid", payload=TARGET, base=OTHER_BASE,
                       base_version=V1, name="d1-again")  # fmt: skip
    with pytest.raises(HubError, match="a second delta from version 0x01000000"):
        hub.submit(SUP, [eui], files["full"] + files["d1"] + again)


def test_submission_refuses_a_delta_whose_descriptor_is_not_the_signed_one(imgs, dev, files,
                                                                           tmp_path):  # fmt: skip
    hub, eui = make_hub(imgs, dev)
    data = bytearray(files["d1"][0].read_bytes())
    at = data.index(b"HNDP")  # the descriptor, uncompressed in the first chunk
    data[at + 8 : at + 12] = (0x01000009).to_bytes(4, "little")  # another base version
    bad = tmp_path / "forged.zigbee"
    bad.write_bytes(bytes(data))
    with pytest.raises(HubError, match="BAD_CHAIN|INVALID_SIGNATURE|not the signed one"):
        hub.submit(SUP, [eui], files["full"] + [bad])
