"""The rig through labgrid (issue 17, items 5-7): a coordinator and two exporter hosts on
127.0.0.1 with four sim boards (hanota.lab), the rig acquiring places, flashing and
provisioning each board through its exported console and power switch, and one hub
updating them over their exported HAN links."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from hanota import paths
from hanota.lab.up import Lab
from hanota.rig import lgboard
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
    """Through the CLI (labgrid's client, with its gRPC threads, stays out of this test
    process, which forks sim boards for other tests): host2 killed mid-update, its two
    boards' transfers fail by the hub's stall rule while host1's two activate; host2
    back, its boards resume and activate."""
    files = app_image(images, "sim-ppmid", V2, 200000)
    lost = lab.host_places(2)
    port_place = {lab.layout["places"][p]["han_port"]: p for p in lab.places}
    proc = subprocess.Popen(
        [*HANOTA, "rig", "update", "--lg-coordinator", lab.coordinator, "--lg-place",
         "sim-ppmid-*", "--image", *map(str, files), "--trust", str(images.pub_path),
         "--factory-version", str(V1), "--block-size", "50", "--stall-timeout", "3",
         "--timeout", "400", "--workdir", str(tmp_path / "run"), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")),
                              daemon=True)  # fmt: skip
    reader.start()
    eui_place: dict[str, str] = {}

    def seen(kind: str, places: list[str]) -> bool:
        for ln in list(lines):  # "hub: link-up link=socket://127.0.0.1:PORT device=EUI"
            if m := re.search(r"link-up link=socket://[\d.]+:(\d+) device=(\w+)", ln):
                eui_place[m[2]] = port_place[int(m[1])]
        hits = {eui_place.get(m[1]) for ln in list(lines)
                if (m := re.search(rf"hub: {kind} .*device=(\w+)", ln))}  # fmt: skip
        return set(places) <= hits

    def wait(kind: str, places: list[str], timeout: float) -> None:
        end = time.monotonic() + timeout
        while not seen(kind, places):
            assert proc.poll() is None, "".join(lines[-40:])
            assert time.monotonic() < end, f"no {kind} for {places}:\n" + "".join(lines[-40:])
            time.sleep(0.1)

    try:
        wait("transfer-start", lost, 240)
        time.sleep(1.0)  # well into 200 kB in 50-byte blocks
        lab.kill_host(2)
        others = [p for p in lab.places if p not in lost]
        wait("alert transfer-failure", lost, 60)  # the stall rule: no request for 3 s
        wait("alert activation", others, 120)  # the other host's boards go on
        assert not seen("alert activation", lost)
        lab.start_host(2)  # same ports: the hub's links reopen, the boards resume
        out, _ = proc.communicate(timeout=400)
    finally:
        if proc.poll() is None:
            proc.kill()
        if "host2" not in lab.hosts:
            lab.start_host(2)
    assert proc.returncode == 0, "".join(lines[-60:])
    doc = json.loads(out)
    assert doc["ok"] is True, doc
    for b in doc["boards"]:
        assert b["running_version"] == V2 and b["activation"] == "success", b
        fails = [a for a in b["alerts"] if a["kind"] == "transfer-failure"]
        if b["place"] in lost:
            assert [a["reason_code"] for a in fails] == [3], b["alerts"]
        else:
            assert fails == [], b["alerts"]


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
