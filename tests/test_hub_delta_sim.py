"""The hub choosing between a delta and the full image for a simulated board running the
real agent under MicroPython: the delta from the board's version when its bytes are the
base, the full image (on the next query) when they are not."""

from __future__ import annotations

import hashlib

import pytest
from hanota import paths
from hanota.board import defs
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


def _edited(board: dict, version: int, note: bytes) -> bytes:
    """The agent app with a function appended to otaclient/alerts.py."""
    files = []
    for path, data in appimage.collect(paths.FIRMWARE):
        if path == "otaclient/alerts.py":
            data += b"\n\ndef _release_note():\n    return '" + note + b"'\n"
        files.append((path, data))
    return appimage.build(files, version, board)


def _update(hub, make_board, images, base: bytes, name: str) -> tuple:
    """Submit the full image of V2 and a delta to it from `base` (said to be V1) to a
    fresh board at V1; run to the end; the board, its transfer and the target."""
    b = make_board("sim-ppmid", ["supplier-a"])
    hub.attach(b)
    eui = b.record["eui64"]
    hub.wait(lambda: hub.hub.state.devices[eui].announced_version, 30, "announce")
    bdef = defs.load("sim-ppmid")
    target = _edited(bdef, V2, b"hub-delta")
    full = images.build(V2, board="sim-ppmid", payload=target, compress=True, name=f"{name}-f")
    delta = images.build(V2, board="sim-ppmid", payload=target, compress=True, base=base,
                         base_version=V1, name=f"{name}-d")  # fmt: skip
    res = hub.call(hub.hub.submit, "supplier-a", [eui], full + delta)
    hub.wait(lambda: hub.hub.settled() and b.sim.running_version == V2, 180, "the update")
    flash = FlashFile(b.sim.dir / "flash.bin", bdef)
    off, _ = flash.part(f"ota_{b.sim.running_slot}")
    assert hashlib.sha256(flash.read(off, len(target))).digest() == hashlib.sha256(target).digest()
    return b, hub.hub.state.transfers[(res["id"], eui)], full, delta


def _success(hub, eui: str) -> dict:
    return next(a for a in hub.hub.alerts("supplier-a")
                if a["kind"] == "transfer-success" and a["device"] == eui)  # fmt: skip


def test_board_on_the_base_gets_the_delta(hub, make_board, images):
    base = create.factory_app(defs.load("sim-ppmid"), V1, None)  # what make_board flashed
    b, t, _full, delta = _update(hub, make_board, images, base, "on-base")
    eui = b.record["eui64"]
    assert t.sent == delta[0].stat().st_size  # only the delta travelled
    ok = _success(hub, eui)
    assert (ok["image"], ok["delta_base_version"], ok["deltas_refused"]) == ("delta", V1, [])
    hist = hub.hub.inventory()["devices"][0]["history"][-1]
    assert (hist["image"], hist["outcome"]) == ("delta", "success")


def test_board_whose_bytes_are_not_the_base_refuses_the_delta_and_gets_the_full_image(
    hub, make_board, images
):
    other = _edited(defs.load("sim-ppmid"), V1, b"not-the-factory-app")  # V1 in name only
    b, t, full, delta = _update(hub, make_board, images, other, "off-base")
    eui = b.record["eui64"]
    ok = _success(hub, eui)
    assert (ok["image"], ok["deltas_refused"]) == ("full", [V1])
    full_bytes = sum(f.stat().st_size for f in full)
    assert ok["image_bytes"] == full_bytes
    # the delta's head and descriptor went out, then the whole full image
    assert full_bytes < t.sent < full_bytes + delta[0].stat().st_size + 4096
    log = b.sim.console_text()
    assert "delta refused: the running firmware is not its base" in log
