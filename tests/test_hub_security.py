"""Issue 20 at the hub: trust from signatures only (a spoofed announce changes nothing),
links bound by configuration, submissions verified whole, unknown versions shown as
unknown, signed alerts forwarded with counter gaps reported (docs/security.md)."""

from __future__ import annotations

import asyncio
import time

import pytest
from hanota.hub import HubError
from hanota.hub.alerts import verify_signed
from hanota.hub.server import parse_link
from hanota.hub.view import inventory_lines
from hanota.rig import factory
from otaclient import imagefmt, zcl
from test_hub_core import SUPS, V1, V2, Rig, make_hub, run, trusted  # noqa: F401 (autouse)

UNKNOWN = 0xFFFFFFFF


@pytest.fixture(scope="module")
def dev():
    return factory.device("sim-ppmid", SUPS, seed="hub-sec", short_addr=9)


@pytest.fixture(scope="module")
def victim():
    return factory.device("sim-ppmid", SUPS, seed="hub-sec-victim", short_addr=10)


def events(hub, kind):
    return [e for e in _log(hub) if e["kind"] == kind]


def _log(hub):
    from hanota.hub.events import read_events

    return list(read_events(hub.state_dir / "events.jsonl"))


# --- 1. trust from signatures only --------------------------------------------------------


def test_announce_of_another_device_on_a_link_rebinds_nothing(tmp_path, dev, victim):
    hub = make_hub(tmp_path)
    hub.enrol(dev[1])
    hub.enrol(victim[1])
    veui = victim[1]["eui64"]

    async def go():
        async with Rig(hub, victim) as v, Rig(hub, dev) as attacker:
            await v.client.announce()
            await asyncio.sleep(0.1)
            before = hub.inventory()["devices"]
            # the victim's EUI-64 from the attacker's link, then a query with the
            # victim's short address
            attacker.client.send(zcl.DeviceAnnounce(bytes.fromhex(veui), 0x0100, V2,
                                                    zcl.BOOT_ACTIVATED))  # fmt: skip
            attacker.client.addr = victim[1]["short_addr"]
            attacker.client.send(zcl.QueryNextImageReq(1, 0x121D, 0x0084, V2, 0x0100))
            await asyncio.sleep(0.2)
            assert hub.links[veui] is v.session
            after = hub.inventory()["devices"]
            assert [d["announced"] for d in after] == [d["announced"] for d in before]
            assert [d["link"] for d in after] == [d["link"] for d in before]

    run(go())
    refused = events(hub, "frame-refused")
    assert len(refused) == 2 and all(e["device"] == dev[1]["eui64"] for e in refused)
    assert "announce of " + veui in refused[0]["reason"]
    assert "short address" in refused[1]["reason"]


def test_unsigned_activated_announce_moves_no_transfer_and_confirms_nothing(dev, frag2):
    hub = make_hub(confirm_wait_s=0.5)
    hub.enrol(dev[1])
    eui = dev[1]["eui64"]

    async def go():
        async with Rig(hub, dev) as rig:
            hub.submit("supplier-a", [eui], frag2)
            for _ in frag2:  # the whole transfer, then only an unsigned "I activated it"
                rsp = await rig.client.query()
                data = await rig.client.fetch(rsp)
                last = data == frag2[-1].read_bytes()
                await rig.client.end(zcl.SUCCESS if last else zcl.REQUIRE_MORE_IMAGE, rsp)
                if not last:
                    await rig.client.recv(zcl.DefaultRsp)
            await rig.client.recv(zcl.UpgradeEndRsp)
            rig.client.version = V2
            await rig.client.announce(zcl.BOOT_ACTIVATED)
            await asyncio.sleep(0.3)
            assert hub.transfer(eui).state == "complete"  # not "activated"
            await rig.settle(timeout=5)

    run(go())
    inv = hub.inventory()["devices"][0]
    assert inv["version"] is None and inv["version_evidence"] is None
    assert inv["announced"]["version"] == V2 and inv["announced"]["authenticated"] is False
    conf = [a for a in hub.alerts() if a["kind"] == "version-confirmation"]
    assert len(conf) == 2 and not any(a["matches"] for a in conf), conf
    assert all(a["version"] is None and a["announced_version"] == V2 for a in conf)
    assert not [a for a in hub.alerts() if a["kind"] == "activation"]


def test_version_comes_from_the_signed_alert(dev, frag2):
    hub = make_hub()
    hub.enrol(dev[1])

    async def go():
        async with Rig(hub, dev) as rig:
            await rig.client.announce()
            hub.submit("supplier-a", [dev[1]["eui64"]], frag2)
            await rig.client.update()
            await rig.settle()

    run(go())
    inv = hub.inventory()["devices"][0]
    assert inv["version"] == V2
    assert inv["version_evidence"]["result"] == "success"
    assert inv["version_evidence"]["counter"] == 2  # the newest of the two signed alerts
    conf = [a for a in hub.alerts() if a["kind"] == "version-confirmation"]
    assert conf and all(a["matches"] and a["evidence"]["counter"] == 2 for a in conf)


def test_a_link_needs_its_device_named_in_the_configuration():
    with pytest.raises(ValueError, match="PATH=EUI64"):
        parse_link("/dev/ttyUSB1")
    assert parse_link("/dev/ttyUSB1=00112233AABBCCDD") == ("/dev/ttyUSB1", "00112233aabbccdd")


# --- 4. submissions verified whole ------------------------------------------------------


def _forged_compressed(imgs, tmp_path, key_id: int):
    """37 kB of junk with a trusted key id and a manifest claiming 3 MB (compressed)."""
    payload = bytes(range(256)) * 144  # 36,864 bytes
    total = 3_000_000
    m = imagefmt.Manifest(imagefmt.MANIFEST_VERSION, 0x121D, 0x0084, 0, 0xFFFF, V2, 0,
                          key_id, len(payload), bytes(32), True, 0, 1, 0, total, total,
                          bytes(16))  # fmt: skip
    man = imagefmt.pack_manifest(m)
    size = imagefmt.HEADER_LENGTH + len(man) + imagefmt.SIG_SIZE + len(payload)
    head = imagefmt.pack_header(0x121D, 0x0084, V2, 0, 0xFFFF, size)
    path = tmp_path / "forged.zigbee"
    path.write_bytes(head + man + bytes(imagefmt.SIG_SIZE) + payload)
    return [path]


@pytest.mark.parametrize("case, error", [
    ("bad-signature", "INVALID_SIGNATURE"),
    ("forged-3MB", "submission refused"),
    ("untrusted-key", "UNKNOWN_KEY"),
    ("no-anchor", "no manufacturer trust anchor"),
])  # fmt: skip
def test_submission_verified_whole_before_it_is_accepted(tmp_path, dev, frag2, imgs, case, error):
    from hanota.hub import Hub, HubConfig

    hub = make_hub() if case != "no-anchor" else Hub(HubConfig())
    hub.enrol(dev[1])
    files = list(frag2)
    if case == "bad-signature":  # trusted key id, manifest intact, last signature byte off
        data = bytearray(files[1].read_bytes())
        data[imagefmt.SIGNED_END + imagefmt.SIG_SIZE - 1] ^= 1  # image format 2: after the manifest
        files[1] = tmp_path / files[1].name
        files[1].write_bytes(bytes(data))
    elif case == "forged-3MB":
        from otaclient import image

        mine = image.parse_manifest(
            memoryview(frag2[0].read_bytes())[imagefmt.HEADER_LENGTH :],
            image.parse_header(frag2[0].read_bytes()),
        )
        files = _forged_compressed(imgs, tmp_path, mine.key_id)
    elif case == "untrusted-key":
        files = factory.Images(tmp_path / "other").build(V2, board="sim-ppmid", size=4096)
    with pytest.raises(HubError, match=error):
        hub.submit("supplier-a", [dev[1]["eui64"]], files)
    assert hub.state.active(dev[1]["eui64"]) is None and not hub.state.submissions


# --- 5. unknown running version ----------------------------------------------------------


def test_unknown_version_is_shown_as_unknown(dev):
    hub = make_hub()
    hub.enrol(dev[1])

    async def go():
        async with Rig(hub, dev, version=UNKNOWN) as rig:
            await rig.client.announce()
            await asyncio.sleep(0.1)
            inv = hub.inventory()["devices"][0]
            assert inv["announced"]["version"] is None and inv["version"] is None
            rig.client.alert("supplier-a", UNKNOWN, zcl.RESULT_FAILURE)
            assert (await rig.client.recv(zcl.AlertAck)).counter == 1

    run(go())
    hub.raise_due_alerts()
    inv = hub.inventory()
    d = inv["devices"][0]
    assert d["version"] is None and d["version_evidence"]["result"] == "failure"
    text = "\n".join(inventory_lines(inv))
    assert "version unknown" in text and "0xffffffff" not in text.lower()
    act = [a for a in hub.alerts() if a["kind"] == "activation"]
    assert act[0]["version"] is None


# --- 3. signed alerts, counters ----------------------------------------------------------


def test_activation_alert_is_forwarded_signed_for_the_supplier_to_check(dev):
    hub = make_hub()
    hub.enrol(dev[1])

    async def go():
        async with Rig(hub, dev) as rig:
            rig.client.alert("supplier-b", V2, zcl.RESULT_SUCCESS)
            await rig.client.recv(zcl.AlertAck)

    run(go())
    hub.raise_due_alerts()
    (a,) = [a for a in hub.alerts() if a["kind"] == "activation"]
    assert "signature" not in a or a["signature"] != "valid"
    pub = bytes.fromhex(dev[1]["public_key"])  # the key from the manufacturer's record
    got = verify_signed(a, pub)
    assert got["device"] == dev[1]["eui64"] and got["supplier"] == "supplier-b"
    assert (got["version"], got["result"], got["counter"]) == (V2, "success", 1)
    with pytest.raises(ValueError, match="result"):
        verify_signed({**a, "result": "failure"}, pub)  # a hub that rewrote a field
    other = factory.device("sim-ppmid", SUPS, seed="someone-else")[1]["public_key"]
    with pytest.raises(ValueError, match="does not verify"):
        verify_signed(a, bytes.fromhex(other))


def test_a_suppressed_alert_shows_as_a_counter_gap_to_every_supplier(tmp_path, dev):
    hub = make_hub(tmp_path)
    hub.enrol(dev[1])

    async def go():
        async with Rig(hub, dev) as rig:
            rig.client.alert("supplier-a", V2, zcl.RESULT_SUCCESS)
            await rig.client.recv(zcl.AlertAck)
            # counter 2 (supplier-b's) was acked by a spoofed ALERT_ACK: the device
            # dropped it, and the hub never saw it
            rig.client._counter += 1
            rig.client.alert("supplier-a", V2, zcl.RESULT_SUCCESS)
            assert (await rig.client.recv(zcl.AlertAck)).counter == 3

    run(go())
    hub.raise_due_alerts()
    gaps = [a for a in hub.alerts() if a["kind"] == "alert-gap"]
    assert sorted(a["supplier"] for a in gaps) == SUPS
    assert all(a["missing"] == [2, 2] and a["before"] == 3 for a in gaps)
    act = [a for a in hub.alerts() if a["kind"] == "activation"]
    assert [a["counter_gap"] for a in act] == [[], [2, 2]]
    assert hub.inventory()["devices"][0]["alert_counters"] == {"last": 3, "missing": [[2, 2]]}
    again = make_hub(tmp_path)  # the counters are in the log
    assert again.inventory()["devices"][0]["alert_counters"]["missing"] == [[2, 2]]


def test_a_late_alert_fills_its_gap_and_moves_nothing(dev):
    hub = make_hub()
    hub.enrol(dev[1])

    async def go():
        async with Rig(hub, dev) as rig:
            rig.client._counter = 1  # alert 1 is held back, 2 arrives first
            rig.client.alert("supplier-a", V2, zcl.RESULT_SUCCESS)
            await rig.client.recv(zcl.AlertAck)
            rig.client._counter = 0
            rig.client.alert("supplier-a", V1, zcl.RESULT_FAILURE)
            assert (await rig.client.recv(zcl.AlertAck)).counter == 1

    run(go())
    d = hub.inventory()["devices"][0]
    assert d["alert_counters"] == {"last": 2, "missing": []}
    assert d["version"] == V2  # the newest signed alert's, not the late one's
    hub.raise_due_alerts()
    late = [a for a in hub.alerts() if a["kind"] == "activation" and a["late"]]
    assert [a["counter"] for a in late] == [1]


def test_counter_gaps_are_ranges_whatever_the_jump(dev):
    from hanota.hub.alerts import counter_ranges

    assert counter_ranges([], [2, 9], 10) == [[2, 9]]
    assert counter_ranges([[2, 9]], None, 5) == [[2, 4], [6, 9]]
    assert counter_ranges([[2, 2]], None, 2) == []
    assert counter_ranges([], [1, 2**32 - 2], 2**32 - 1) == [[1, 2**32 - 2]]  # no huge set


def test_turns_do_not_wait_forever(dev, frag2):
    hub = make_hub(turn_s=60)
    hub.enrol(dev[1])
    eui = dev[1]["eui64"]
    first = hub.submit("supplier-a", [eui], frag2, activate_at="hold")
    assert hub.check_turns(time.time() + 3600) == []  # nobody waits: no limit applies
    second = hub.submit("supplier-b", [eui], frag2, queue=True)
    assert second["queued"] == [eui] and second["accepted"] == []
    assert hub.check_turns(time.time() + 30) == []
    ended = hub.check_turns(time.time() + 61)
    assert [t.submission.id for t in ended] == [first["id"]]
    assert hub.transfer(eui).submission.id == second["id"]
    assert hub.transfer(eui).state == "pending"
    hub.raise_due_alerts(time.time() + 1)
    fail = [a for a in hub.alerts("supplier-a") if a["kind"] == "transfer-failure"]
    assert "turn over" in fail[-1]["reason"] and fail[-1]["reason_code"] == 1
    started = [a for a in hub.alerts("supplier-b") if a.get("status") == "started"]
    assert started and started[0]["submission"] == second["id"]
