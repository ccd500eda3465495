"""`hanota rig update --factory-app OLD.bin --image FULL... DELTA --json` on a simulated
board: the board starts with exactly OLD.bin, the hub picks the delta, and the summary says
so (`delta`, `firmware_bytes` beside `image_bytes`)."""

from __future__ import annotations

import json

import pytest
from hanota import cli, paths
from hanota.board import defs
from hanota.sim import appimage
from hanota.sim.flash import FlashFile

pytestmark = [
    pytest.mark.sim,
    pytest.mark.skipif(
        not (paths.FIRMWARE / "main.py").is_file(),
        reason="the agent (firmware/main.py) is not built",
    ),
]
V1, V2 = 0x01000000, 0x02000000


def _app(version: int, note: bytes) -> bytes:
    """This checkout's agent with one module edited (a function appended)."""
    files = []
    for path, data in appimage.collect(paths.FIRMWARE):
        if path == "otaclient/alerts.py":
            data += b"\n\ndef _release_note():\n    return '" + note + b"'\n"
        files.append((path, data))
    return appimage.build(files, version, defs.load("sim-ppmid"))


def test_factory_app_is_the_delta_base_and_the_delta_is_delivered(capsys, images, tmp_path):
    old, new = _app(V1, b"rig-old"), _app(V2, b"rig-new")  # old is not what the rig builds
    (tmp_path / "old.bin").write_bytes(old)
    full = images.build(V2, board="sim-ppmid", payload=new, compress=True, name="rig-full")
    delta = images.build(V2, board="sim-ppmid", payload=new, compress=True, base=old,
                         name="rig-delta")  # fmt: skip
    work = tmp_path / "w"
    rc = cli.main(["rig", "update", "--json", "--factory-app", str(tmp_path / "old.bin"),
                   "--image", *map(str, full + delta), "--trust", str(images.pub_path),
                   "--workdir", str(work), "--no-heap-report"])  # fmt: skip
    res = json.loads(capsys.readouterr().out)
    assert rc == 0 and res["ok"], res
    assert (res["before_version"], res["running_version"]) == (V1, V2)
    assert res["delta"] is True and res["firmware_bytes"] == len(new)
    assert res["image_bytes"] == delta[0].stat().st_size < 0.03 * len(new)
    flash = FlashFile(work / "board" / "flash.bin", defs.load("sim-ppmid"))
    assert flash.read(flash.part("ota_0")[0], len(old)) == old  # exactly those bytes, kept
    ok = [a for a in res["alerts"] if a["kind"] == "transfer-success"]
    assert ok and ok[0]["image"] == "delta"


def test_full_image_only_reports_no_delta(capsys, images, tmp_path):
    new = _app(V2, b"rig-full-only")
    full = images.build(V2, board="sim-ppmid", payload=new, name="rig-full-only")
    rc = cli.main(["rig", "update", "--json", "--image", *map(str, full), "--trust",
                   str(images.pub_path), "--workdir", str(tmp_path), "--no-heap-report"])  # fmt: skip
    res = json.loads(capsys.readouterr().out)
    assert rc == 0 and res["ok"], res
    assert res["delta"] is False and res["firmware_bytes"] == len(new)
    assert res["image_bytes"] >= full[0].stat().st_size > len(new)


def test_factory_app_that_is_not_an_app_is_refused_before_anything_runs(capsys, images,
                                                                        tmp_path):  # fmt: skip
    bad = tmp_path / "bad.bin"
    bad.write_bytes(_app(V1, b"x")[:-10])  # its tree cut short
    full = images.build(V2, board="sim-ppmid", size=4000, name="rig-bad-factory")
    rc = cli.main(["rig", "update", "--factory-app", str(bad), "--image", str(full[0]),
                   "--trust", str(images.pub_path), "--workdir", str(tmp_path / "w")])  # fmt: skip
    err = capsys.readouterr().err
    assert rc != 0 and "--factory-app" in err and "not a sim app" in err
    assert not (tmp_path / "w" / "board" / "flash.bin").exists()
