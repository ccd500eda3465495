"""A delta update end to end: the hub serves a delta file (submitted as an ordinary image)
to a simulated board running the real agent under MicroPython, which ends up running the
target's exact bytes."""

from __future__ import annotations

import hashlib

import pytest
from hanota import namemap, paths
from hanota.board import defs
from hanota.image import build
from hanota.image import delta as hd
from hanota.mpycross import firmware_namemap
from hanota.rig.console import crash_lines
from hanota.sim import appimage, create
from hanota.sim.flash import FlashFile

pytestmark = [
    pytest.mark.sim,
    pytest.mark.skipif(
        not (paths.FIRMWARE / "main.py").is_file(),
        reason="the agent (firmware/main.py) is not built",
    ),
]
V1, V2 = 0x01000000, 0x01000001  # make_board's factory version, the target's


def _one_module_edited(board: dict) -> bytes:
    """The agent app with one module changed (a function added to otaclient/alerts.py)."""
    files = []
    for path, data in appimage.collect(paths.FIRMWARE):
        if path == "otaclient/alerts.py":
            data += b"\n\ndef _release_note():\n    return 'delta-test'\n"
        files.append((path, data))
    return appimage.build(files, V2, board)


@pytest.mark.parametrize("heap", [None, "64k"])  # the board's own 96k, and QUALITY.md's 64k
def test_delta_update_through_the_hub_runs_the_target_bytes(hub, make_board, images, heap):
    b = make_board("sim-ppmid", ["supplier-a"], heap=heap)
    hub.attach(b)
    eui = b.record["eui64"]
    hub.wait(lambda: hub.hub.state.devices[eui].announced_version, 30, "announce")
    bdef = defs.load("sim-ppmid")
    base = create.factory_app(bdef, V1, None)  # what make_board flashed
    target = _one_module_edited(bdef)
    t = build.Target(bdef["manufacturer_code"], bdef["image_type"], V2, 0, 0xFFFF)
    patch = hd.make(base, target, V1)
    files = build.write(
        images.root / "delta", build.build(patch, t, images.key, compress=True, delta=True)
    )
    assert files[0].stat().st_size <= 0.03 * len(target)  # the bar: one module, <= 3 %
    hub.call(hub.hub.submit, "supplier-a", [eui], files)
    hub.wait(lambda: hub.hub.settled() and b.sim.running_version == V2, 120, "delta update")
    flash = FlashFile(b.sim.dir / "flash.bin", bdef)
    off, _size = flash.part(f"ota_{b.sim.running_slot}")
    assert b.sim.running_slot == 1
    assert hashlib.sha256(flash.read(off, len(target))).digest() == hashlib.sha256(target).digest()
    assert flash.read(flash.part("ota_0")[0], len(base)) == base  # the base was only read
    console = (b.sim.dir / "console.log").read_text(errors="replace")
    # a crash is shown whole, short names read back (it was seen once at 64k under load)
    crashes = crash_lines(console, namemap.load(firmware_namemap()))
    assert not crashes, "\n".join(crashes)
