"""End to end on simulated boards (real MicroPython + the agent) through the rig:
`hanota rig update --json`, several boards on one hub, faults and power cuts."""

from __future__ import annotations

import json

import pytest
from hanota import cli, paths
from hanota.board import defs
from hanota.sim import appimage

pytestmark = [
    pytest.mark.sim,
    pytest.mark.skipif(
        not (paths.FIRMWARE / "main.py").is_file(),
        reason="the agent (firmware/main.py) is not built",
    ),
]
V1, V2 = 0x01000000, 0x02000000
KEYS = {"ok", "before_version", "reported_version", "running_version", "activation", "rejected",
        "alerts", "image_bytes", "link_bytes", "transfer_seconds", "peak_heap"}  # fmt: skip


def app_image(images, board: str, version: int, pad_to: int, max_size: int = 750000):
    app = appimage.build(appimage.collect(paths.FIRMWARE), version, defs.load(board), pad_to=pad_to)
    return images.build(version, board=board, payload=app, max_size=max_size,
                        name=f"{board}-{version:x}-{pad_to}-{max_size}")  # fmt: skip


def rig_update(capsys, *args: str) -> tuple[int, dict]:
    rc = cli.main(["rig", "update", "--json", *args])
    out = capsys.readouterr().out
    return rc, json.loads(out)


def test_rig_update_json_fragmented_success(capsys, images, tmp_path):
    files = app_image(images, "sim-ppmid", V2, 180000, max_size=120000)
    rc, res = rig_update(capsys, "--board", "sim-ppmid", "--image", *map(str, files),
                         "--trust", str(images.pub_path), "--workdir", str(tmp_path))  # fmt: skip
    assert KEYS <= set(res), res
    assert rc == 0 and res["ok"], res
    assert (res["before_version"], res["running_version"], res["reported_version"]) == (V1, V2, V2)
    assert res["activation"] == "success" and res["rejected"] is None
    kinds = [a["kind"] for a in res["alerts"]]
    for k in ("submission-processed", "transfer-success", "activation", "version-confirmation"):
        assert kinds.count(k) == 1, kinds
    assert all({"supplier", "kind", "version", "at"} <= set(a) for a in res["alerts"])
    assert res["image_bytes"] >= sum(f.stat().st_size for f in files)


@pytest.mark.bad_input("unknown-key")
def test_rig_update_image_from_untrusted_key_is_rejected(capsys, tmp_path, images):
    from hanota.rig.factory import Images

    other = Images(tmp_path / "other")
    files = app_image(other, "sim-ppmid", V2, 150000)
    rc, res = rig_update(capsys, "--image", *map(str, files), "--trust", str(images.pub_path),
                         "--workdir", str(tmp_path / "w"))  # fmt: skip
    assert rc == 0 and res["ok"], res
    assert res["activation"] == "none" and res["running_version"] == V1
    assert res["rejected"] and "INVALID_IMAGE" in res["rejected"]
    assert [a["reason_code"] for a in res["alerts"] if a["kind"] == "transfer-failure"] == [3]


def test_two_boards_two_suppliers_on_one_hub(hub, make_board, images):
    ihd = make_board("sim-ihd", ["supplier-a"])
    ppmid = make_board("sim-ppmid", ["supplier-b", "supplier-a"])
    for b in (ihd, ppmid):
        hub.attach(b)
    for b, sup in ((ihd, "supplier-a"), (ppmid, "supplier-b")):
        hub.wait(
            lambda b=b: hub.hub.state.devices[b.record["eui64"]].announced_version, 30, "announce"
        )
        files = app_image(images, b.record["board"], V2, 160000, max_size=100000)
        hub.call(hub.hub.submit, sup, [b.record["eui64"]], files)
    hub.wait(lambda: hub.hub.settled() and len(_acts(hub)) == 3, 90, "both updates")
    assert ihd.sim.running_version == ppmid.sim.running_version == V2
    got = sorted((a["supplier"], a["kind"]) for a in hub.call(hub.hub.alerts)
                 if a["device"] == ppmid.record["eui64"])  # fmt: skip
    assert got.count(("supplier-a", "version-confirmation")) == 1
    assert got.count(("supplier-b", "version-confirmation")) == 1
    assert got.count(("supplier-a", "activation")) == got.count(("supplier-b", "activation")) == 1


def _acts(hub) -> list:
    return [a for a in hub.hub.alerts() if a["kind"] == "activation"]


@pytest.mark.slow
def test_power_cut_mid_transfer_then_update_completes(capsys, images, tmp_path):
    files = app_image(images, "sim-ppmid", V2, 300000, max_size=120000)
    rc, res = rig_update(capsys, "--image", *map(str, files), "--trust", str(images.pub_path),
                         "--cut-at", "40", "--workdir", str(tmp_path))  # fmt: skip
    assert rc == 0 and res["ok"] and res["running_version"] == V2, res
    assert res["power_cuts"] == 1 and res["boots"] >= 3, res


@pytest.mark.slow
def test_update_over_a_lossy_uart(capsys, images, tmp_path):
    files = app_image(images, "sim-ppmid", V2, 160000)
    rc, res = rig_update(capsys, "--image", *map(str, files), "--trust", str(images.pub_path),
                         "--link", "uart-921600", "--drop", "0.02", "--seed", "7",
                         "--workdir", str(tmp_path))  # fmt: skip
    assert rc == 0 and res["ok"] and res["running_version"] == V2, res
