"""The rig through labgrid (issue 17, items 5-7): a coordinator and two exporter hosts on
127.0.0.1 with four sim boards (hanota.lab), the rig acquiring places, flashing and
provisioning each board through its exported console and power switch, and one hub
updating them over their exported HAN links."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hanota import paths
from hanota.lab.up import Lab
from hanota.rig import lgboard
from hanota.rig.fixtures import HubThread
from test_rig_sim import V1, V2, app_image

pytestmark = [
    pytest.mark.sim,
    pytest.mark.skipif(not (paths.FIRMWARE / "main.py").is_file(), reason="no agent"),
]
HANOTA = [sys.executable, "-m", "hanota.cli"]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with Lab(tmp_path_factory.mktemp("lab"), boards=4, exporters=2) as lab:
        yield lab


def _acquired(lab: Lab) -> list[str]:
    out = lgboard.client(lab.coordinator, "places", "--acquired")
    return out.split()


def test_one_hub_updates_every_place_of_two_hosts(lab, images, tmp_path):
    files = app_image(images, "sim-ppmid", V2, 80000)
    res = subprocess.run(
        [*HANOTA, "rig", "update", "--lg-coordinator", lab.coordinator, "--lg-place",
         "sim-ppmid-*", "--image", *map(str, files), "--trust", str(images.pub_path),
         "--factory-version", str(V1), "--workdir", str(tmp_path / "run"), "--json"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-4000:]
    doc = json.loads(res.stdout)
    assert doc["ok"] is True and len(doc["boards"]) == 4, doc
    assert sorted(b["place"] for b in doc["boards"]) == sorted(lab.places)
    hosts = {lab.host_of(b["place"]) for b in doc["boards"]}
    assert hosts == {"host1", "host2"}
    for b in doc["boards"]:
        assert b["before_version"] == V1 and b["running_version"] == V2, b
        assert b["activation"] == "success" and b["checks"]["alerts_settled"], b
        assert isinstance(b["image_bytes"], int) and b["image_bytes"] > 80000
        assert isinstance(b["peak_heap"], int), b  # the console was read over its endpoint
    assert len({b["reported_version"] for b in doc["boards"]}) == 1
    assert _acquired(lab) == []  # every place released


def test_a_place_someone_else_holds_is_refused_and_left_untouched(lab, images, tmp_path):
    place = lab.places[0]
    flash = Path(lab.layout["places"][place]["board_dir"]) / "flash.bin"
    before = hashlib.sha256(flash.read_bytes()).hexdigest()
    alice = {"LG_USERNAME": "alice", "LG_HOSTNAME": "bench-7"}
    lgboard.client(lab.coordinator, "-p", place, "acquire", env=alice)
    try:
        files = app_image(images, "sim-ppmid", V2, 80000)
        res = subprocess.run(
            [*HANOTA, "rig", "update", "--lg-coordinator", lab.coordinator, "--lg-place",
             place, "--image", *map(str, files), "--trust", str(images.pub_path),
             "--workdir", str(tmp_path / "run"), "--json"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert res.returncode == 1 and res.stdout == "", res.stdout
        assert "acquire" in res.stderr and "alice" in res.stderr, res.stderr
        assert hashlib.sha256(flash.read_bytes()).hexdigest() == before
        assert _acquired(lab) == [place]  # still alice's
    finally:
        lgboard.client(lab.coordinator, "-p", place, "release", env=alice)


def test_a_lost_host_stalls_its_boards_the_others_complete_and_it_resumes(lab, images,
                                                                          tmp_path):  # fmt: skip
    files = app_image(images, "sim-ppmid", V2, 200000)
    names = lab.places
    lost = lab.host_places(2)
    with lgboard.acquired(lab.coordinator, names):
        env = lgboard.environment(lab.coordinator, names, tmp_path)
        made = [lgboard.LabgridBoard(env.get_target(n), "sim-ppmid") for n in names]
        with ThreadPoolExecutor(len(made)) as pool:
            boards = list(pool.map(lambda ib: lgboard.brought_up(
                ib[1], trust=[images.pub_path], suppliers=["supplier-a"], seed=f"lost:{ib[1].name}",
                short_addr=ib[0] + 1, factory_version=V1), enumerate(made)))  # fmt: skip
        hub = HubThread(tmp_path / "hub", "direct", stall_timeout_s=3.0, block_size=50)
        try:
            for b in boards:
                hub.attach(b)
            euis = {b.name: b.record["eui64"] for b in boards}
            hub.wait(lambda: all(hub.hub.state.devices[e].announced_version
                                 for e in euis.values()), 60, "every announce")  # fmt: skip
            hub.call(hub.hub.submit, "supplier-a", list(euis.values()), files)

            def under_way() -> bool:
                ts = [hub.hub.transfer(euis[n]) for n in lost]
                return all(t is not None and t.offset > 20000 for t in ts)

            hub.wait(under_way, 60, "the lost host's transfers to be under way")
            lab.kill_host(2)
            t_kill = time.monotonic()

            def kinds(name: str) -> list[str]:  # run on the hub's loop (by hub.wait) or after
                return [a["kind"] for a in hub.hub.alerts() if a["device"] == euis[name]]

            for n in lost:  # the hub's stall rule names what happened
                hub.wait(lambda n=n: "transfer-failure" in kinds(n), 30, f"{n}'s stall")
                fail = [a for a in hub.call(hub.hub.alerts) if a["device"] == euis[n]
                        and a["kind"] == "transfer-failure"][0]  # fmt: skip
                assert fail["reason_code"] == 3, fail
            for n in set(names) - set(lost):  # the other host's boards complete meanwhile
                hub.wait(lambda n=n: "activation" in kinds(n), 120, f"{n}'s activation")
            assert time.monotonic() - t_kill < 150
            assert all("activation" not in kinds(n) for n in lost)

            lab.start_host(2)  # back on the same ports: the links reopen, the boards resume
            for n in lost:
                hub.wait(lambda n=n: "activation" in kinds(n), 150, f"{n}'s resumed update")
            hub.wait(hub.hub.settled, 60, "the hub to settle")
            for e in euis.values():
                assert hub.hub.state.devices[e].version == V2
        finally:
            hub.close()
            for b in boards:
                with contextlib.suppress(Exception):  # a host the test left down
                    b.power(False)


def test_pytest_fixtures_resolve_to_a_labgrid_target_under_lg_env(lab, tmp_path):
    place = lab.places[-1]
    env = tmp_path / "env.yaml"
    env.write_text(textwrap.dedent(f"""\
        targets:
          main:
            resources:
              RemotePlace:
                name: {place}
            drivers:
              NetworkPowerDriver: {{}}
        options:
          coordinator_address: {lab.coordinator}
        """))  # fmt: skip
    (tmp_path / "test_on_place.py").write_text(textwrap.dedent("""\
        from test_rig_sim import V2, app_image

        def test_update(board, hub, images):
            assert board.name == "PLACE" and board.han_url.startswith("socket://")
            files = app_image(images, "sim-ppmid", V2, 80000)
            hub.attach(board)
            eui = board.record["eui64"]
            hub.wait(lambda: hub.hub.state.devices[eui].announced_version, 60, "announce")
            hub.call(hub.hub.submit, "supplier-a", [eui], files)
            hub.wait(lambda: hub.hub.state.devices[eui].version == V2, 120, "the update")
        """).replace("PLACE", place))  # fmt: skip
    lgboard.client(lab.coordinator, "-p", place, "acquire")
    try:
        res = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--lg-env",
             str(env), str(tmp_path / "test_on_place.py")],
            capture_output=True, text=True, timeout=300, cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parent)},
        )  # fmt: skip
    finally:
        lgboard.client(lab.coordinator, "-p", place, "release")
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert "1 passed" in res.stdout


def test_a_real_board_place_is_not_flashed_by_the_rig_and_needs_its_record(tmp_path):
    from hanota.output import CommandError
    from hanota.rig import lgrun
    from hanota.rig.update import UpdateOptions

    opts = UpdateOptions(images=[], trust=[], board="ihd-esp32")
    with pytest.raises(CommandError, match="flash and provision it first|Flash and provision"):
        lgrun._real_record(opts, ["bench-ihd-1"])
    rec = tmp_path / "board.json"
    rec.write_text(json.dumps({"board": "ihd-esp32", "eui64": "00" * 8}))
    opts.record = rec
    with pytest.raises(CommandError, match="one --lg-place"):
        lgrun._real_record(opts, ["a", "b"])
    assert lgrun._real_record(opts, ["a"])["eui64"] == "00" * 8
    assert lgrun._real_record(UpdateOptions(images=[], trust=[]), ["a", "b"]) is None  # sim


def test_dry_run_through_places_names_each_step(images):
    res = subprocess.run(
        [*HANOTA, "rig", "update", "--lg-coordinator", "127.0.0.1:1", "--lg-place", "p-*",
         "--image", "v2.zigbee", "--trust", str(images.pub_path), "--dry-run", "--json"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    steps = json.loads(res.stdout)["steps"]
    assert "acquire p-*" in steps[0] and "127.0.0.1:1" in steps[0]
    assert any("factory app" in s and "console" in s for s in steps)
    assert steps[-1] == "places: powered off and released"


def test_places_without_a_coordinator_is_a_usage_error(images, monkeypatch):
    monkeypatch.delenv("LG_COORDINATOR", raising=False)
    res = subprocess.run(
        [*HANOTA, "rig", "update", "--lg-place", "p-1", "--image", "v2.zigbee", "--trust",
         str(images.pub_path)],
        capture_output=True, text=True, timeout=60, env={k: v for k, v in os.environ.items()
                                                          if k != "LG_COORDINATOR"},
    )  # fmt: skip
    assert res.returncode == 2 and "--lg-coordinator" in res.stderr
