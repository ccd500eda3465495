"""The link fault campaign (python -m hanota.faults), quick subset: real updates on sim
boards (MicroPython agent) through the hub under faults, bytes read back from flash.
Plus the read-back itself: it must see wrong bytes when there are some."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hanota import paths
from hanota.board import defs
from hanota.faults import campaign, readback, scenarios, transfer
from hanota.rig import simboards
from hanota.rig.factory import Images
from hanota.sim.flash import FlashFile

pytestmark = [
    pytest.mark.sim,
    pytest.mark.skipif(not (paths.FIRMWARE / "main.py").is_file(), reason="no agent"),
]


def faults_cli(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "hanota.faults", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def test_quick_campaign_every_transfer_completes_with_the_right_bytes(tmp_path):
    res = faults_cli("--quick", "--json", "--seed", "5", "--workdir", str(tmp_path))
    doc = json.loads(res.stdout)  # exactly one JSON document on stdout
    assert res.returncode == 0, res.stderr[-3000:]
    assert doc["summary"] == {"tried": 4, "completed": 4, "bytes_wrong": 0}, res.stderr
    assert res.stderr.rstrip().splitlines()[-1] == (
        "faults: 4 transfers tried, 4 completed, 0 bytes wrong"
    )
    by = {r["class"]: r for r in doc["transfers"]}
    assert set(by) == set(scenarios.QUICK)
    for r in by.values():  # the whole firmware was compared, not a prefix
        assert r["bytes_checked"] == doc["app_bytes"] and r["running"] == campaign.TARGET
    mixed = by["mixed"]["faults"]  # each fault actually happened
    for kind in ("bit_errors", "dropped", "duplicated", "reordered", "truncated"):
        assert mixed.get(kind, 0) > 0, mixed
    assert by["cable-pull"]["faults"]["bytes_lost"] > 0
    assert by["wfd-storm"]["wait_for_data"] >= 3
    assert by["hub-restart"]["hub_restarts"] == 2


def test_unknown_class_is_a_usage_error():
    res = faults_cli("--class", "lightning")
    assert res.returncode == 2 and "unknown fault class lightning" in res.stderr
    assert res.stdout == ""


@pytest.fixture(scope="module")
def fresh_board(tmp_path_factory):
    d = tmp_path_factory.mktemp("rb") / "board"
    pub = Images(d.parent / "keys").pub_path
    simboards.fresh(d, "sim-ppmid", factory_version=0x01000000, trust=[pub],
                    suppliers=["supplier-a"], seed="readback")  # fmt: skip
    return d, defs.load("sim-ppmid")


def test_readback_counts_wrong_staged_bytes_and_missing_ones(fresh_board):
    d, bdef = fresh_board
    firmware = bytes(range(256)) * 40  # 10240 bytes: fragments of 4096 + 6144
    flash = FlashFile(d / "flash.bin", bdef)
    slot1 = flash.part("ota_1")[0]
    flash.write(slot1, firmware[:4096] + bytes(6144))  # fragment 1 staged wrong (zeros)
    prog = {"v": 2, "sha": "00", "total": 10240, "n": 2, "sc": 0,
            "done": [[0, 0, 4096], [1, 4096, 6144]]}  # fmt: skip
    simboards.write_store(d, bdef, {"progress.json": json.dumps(prog).encode()})
    n, checked, wrong = readback.staged(d, bdef, 1, firmware)
    expect = sum(b != 0 for b in firmware[4096:])
    assert (n, checked, wrong) == (2, 10240, expect) and wrong > 0
    assert readback.diff(firmware[:100], firmware) == 10140  # missing bytes are wrong


def test_a_transfer_stopped_before_the_end_reports_old_app_intact_and_staged_bytes(tmp_path):
    """Fault window closes with the line still down; resume window too short: the run
    is reported NOT completed, with the factory app and the staged fragment checked."""
    plan = campaign.make_plan(tmp_path, "sim-ppmid", 160_000, 60_000,
                              fault_s=6.0, resume_s=0.05)  # fmt: skip
    sc = scenarios.Scenario("stuck", "cable out from 50 % on", pulls=((0.5, 600.0),))
    r = asyncio.run(transfer.run(plan, sc, 1, tmp_path / "run"))
    assert r["healed"] and not r["completed"], r
    assert r["running"] == plan.factory_version and r["bytes_wrong"] == 0, r
    assert r["staged_fragments"] >= 1 and r["bytes_checked"] > 60_000, r


def test_hub_ignores_a_duplicated_upgrade_end_request():
    from hanota.rig import factory
    from otaclient import link, zcl
    from test_hub_core import Rig, make_hub

    imgs = factory.Images(Path(tempfile.mkdtemp(prefix="dup-")))
    frag3 = imgs.build(0x02000000, board="sim-ppmid", size=3 * 4096 + 100, max_size=4600)
    ident, rec = factory.device("sim-ppmid", ["supplier-a"], seed="dup", short_addr=5)
    hub = make_hub()
    hub.add_anchor(imgs.pub_path)  # the hub verifies submissions: it trusts their key
    hub.enrol(rec)

    async def go():
        async with Rig(hub, (ident, rec)) as rig:
            hub.submit("supplier-a", [rec["eui64"]], frag3)
            rsp = await rig.client.query()
            await rig.client.fetch(rsp)
            end = zcl.UpgradeEndReq(zcl.REQUIRE_MORE_IMAGE, rsp.mfr, rsp.image_type, rsp.version)
            frame = link.encode(rec["short_addr"], 0, 200, zcl.encode_command(end, 200))
            rig.client.send_raw(frame + frame)  # the line duplicated the frame
            await asyncio.sleep(0.3)

    asyncio.run(asyncio.wait_for(go(), 30))
    assert hub.transfer(rec["eui64"]).held == {0}


def test_hub_answers_copies_of_upgrade_end_requests_the_same_and_completes():
    """A ZCL-level copy (new link sequence, same ZCL sequence) of REQUIRE_MORE_IMAGE and a
    line copy of the final SUCCESS: each copy gets the same answer, nothing moves twice."""
    from hanota.rig import factory
    from otaclient import link, zcl
    from test_hub_core import Rig, make_hub

    imgs = factory.Images(Path(tempfile.mkdtemp(prefix="dup2-")))
    frag2 = imgs.build(0x02000000, board="sim-ppmid", size=8192 + 4000, max_size=8500)
    ident, rec = factory.device("sim-ppmid", ["supplier-a"], seed="dup2", short_addr=6)
    hub = make_hub()
    hub.add_anchor(imgs.pub_path)  # the hub verifies submissions: it trusts their key
    hub.enrol(rec)
    eui = rec["eui64"]

    def end_frame(status, rsp, lseq, zseq):
        end = zcl.UpgradeEndReq(status, rsp.mfr, rsp.image_type, rsp.version)
        return link.encode(rec["short_addr"], 0, lseq, zcl.encode_command(end, zseq))

    async def go():
        async with Rig(hub, (ident, rec)) as rig:
            hub.submit("supplier-a", [eui], frag2)
            rsp = await rig.client.query()
            await rig.client.fetch(rsp)
            c = rig.client
            c.send_raw(end_frame(zcl.REQUIRE_MORE_IMAGE, rsp, 100, 100))
            c.send_raw(end_frame(zcl.REQUIRE_MORE_IMAGE, rsp, 101, 100))  # re-wrapped copy
            acks = [await c.recv(zcl.DefaultRsp), await c.recv(zcl.DefaultRsp)]
            assert acks[0] == acks[1] == (zcl.UPGRADE_END_REQ, zcl.SUCCESS)
            assert hub.transfer(eui).held == {0}
            rsp = await c.query()
            await c.fetch(rsp)
            c.send_raw(end_frame(zcl.SUCCESS, rsp, 150, 150) * 2)  # the line copied it
            ends = [await c.recv(zcl.UpgradeEndRsp), await c.recv(zcl.UpgradeEndRsp)]
            assert ends[0].version == ends[1].version == 0x02000000
            assert hub.transfer(eui).held == {0, 1} and hub.transfer(eui).state == "complete"
            assert hub.links[eui].stats["duplicates"] == 1

    asyncio.run(asyncio.wait_for(go(), 30))
    assert [a["kind"] for a in hub.alerts("supplier-a")].count("transfer-success") == 1
    assert not [a for a in hub.alerts() if a["kind"] == "transfer-failure"]
