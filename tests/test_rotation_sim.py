"""Key rotation end to end: the hub serves a rotation image to a simulated board (real
MicroPython, flash file, LittleFS store), then an image signed by the revoked key is refused.

The hub verifies 0xFFC0 submissions against its rotation-authority keys only: one signed
by an image-signing anchor is refused at submission.
"""

from __future__ import annotations

import asyncio

import pytest
from hanota.board import defs, provision
from hanota.hub.core import HubConfig, HubError
from hanota.hub.store import SubmissionError
from hanota.image import rotation
from hanota.image.keys import generate, public_pem, raw_public
from hanota.rig import simboards
from hanota.rig.factory import Images
from hanota.rig.session import RigHub
from hanota.sim.runner import SimBoard
from otaclient import image

pytestmark = pytest.mark.micropython
V1, V2 = 0x01000000, 0x01000100
BOARD = "sim-ppmid"


def _kid(key) -> str:
    return f"{image.key_id(raw_public(key.public_key())):08x}"


def _pem(path, key):
    path.write_bytes(public_pem(key.public_key()))
    return path


def _rotation_file(tmp, name, recs, counter, key, mfr):
    _n, data = rotation.build_image(
        [rotation.Record(op, raw_public(k.public_key())) for op, k in recs], counter, key, mfr
    )
    path = tmp / name
    path.write_bytes(data)
    return path


async def _scenario(tmp):
    bdef = defs.load(BOARD)
    imgs = Images(tmp / "keys")  # the root: the board's and the hub's image-signing anchor
    root = imgs.key
    auth, new_root = generate(), generate()
    ident, record = simboards.fresh(tmp / "b", BOARD, factory_version=V1,
                                    trust=[imgs.pub_path], suppliers=["supplier-a"],
                                    seed=str(tmp))  # fmt: skip
    ident.authority = {_kid(auth): raw_public(auth.public_key())}
    simboards.write_store(tmp / "b", bdef, provision.store_files(ident))
    mfr = bdef["manufacturer_code"]
    by_anchor = _rotation_file(tmp, "by-anchor.zigbee", [(rotation.OP_CODES["revoke-anchor"],
                               root)], 1, root, mfr)  # fmt: skip
    rot = _rotation_file(tmp, "rot1.zigbee", [(rotation.OP_CODES["add-anchor"], new_root),
                         (rotation.OP_CODES["revoke-anchor"], root)], 1, auth, mfr)  # fmt: skip
    old_fw = imgs.build(V2, board=BOARD, size=6000)  # signed by the root, revoked by then
    out = {}
    async with RigHub(tmp / "hub", HubConfig(confirm_delay_s=1.0), trust=[imgs.pub_path]) as rig:
        hub = rig.hub
        hub.add_anchor(_pem(tmp / "auth.pem", auth), authority=True)
        sim = SimBoard(tmp / "b", heap=bdef["heap"]).start()
        b = await rig.add_sim(sim, record)
        eui = b.eui
        await rig.wait(lambda: rig.heard(eui), 60, "the board's announce")
        try:
            hub.submit("supplier-a", [eui], [by_anchor])
        except HubError as exc:
            out["by_anchor"] = str(exc)
        sub = hub.submit("supplier-a", [eui], [rot])
        key = (sub["id"], eui)
        await rig.wait(lambda: hub.state.transfers[key].state == "closed", 60, "the rotation")
        out["rotation"] = hub.state.devices[eui].history[-1]
        sub2 = hub.submit("supplier-a", [eui], old_fw)
        key2 = (sub2["id"], eui)
        await rig.wait(lambda: hub.state.transfers[key2].state == "failed", 60, "the refusal")
        out["old_fw"] = hub.state.devices[eui].history[-1]
        out["alerts"] = [a["kind"] for a in hub.alerts() if a["device"] == eui]
        out["console"] = sim.console_text()
        out["running"] = hub.state.devices[eui].claimed
    return out, _kid(root)


def test_hub_serves_a_rotation_and_the_revoked_key_is_refused_after(tmp_path):
    out, root_kid = asyncio.run(asyncio.wait_for(_scenario(tmp_path), 240))
    assert "not signed" not in out["by_anchor"] and "UNKNOWN_KEY" in out["by_anchor"]
    assert "rotation-authority key" in out["by_anchor"]
    assert out["rotation"]["outcome"] == "closed" and "key rotation" in out["rotation"]["reason"]
    assert out["old_fw"]["outcome"] == "failed"
    assert "INVALID_IMAGE" in out["old_fw"]["reason"]
    console = out["console"]
    assert "ota: image refused: UNKNOWN_KEY" in console, console[-2000:]
    assert "transfer-success" in out["alerts"]
    assert out["running"]["version"] == V1  # nothing activated


def test_hub_keeps_authority_and_anchors_apart_and_refuses_without_authority(tmp_path):
    from hanota.hub.core import Hub

    imgs = Images(tmp_path / "keys")
    auth = generate()
    hub = Hub(HubConfig(), state_dir=tmp_path / "hub")
    hub.add_anchor(imgs.pub_path)
    rot = _rotation_file(tmp_path, "r.zigbee", [(1, generate())], 1, auth, 0x1234)
    with pytest.raises(SubmissionError, match="no rotation authority"):
        hub.store.add([rot], hub.anchors(), hub.authorities())
    with pytest.raises(HubError, match="already trusted as an anchor"):
        hub.add_anchor(imgs.pub_path, authority=True)
    assert hub.add_anchor(_pem(tmp_path / "a.pem", auth), authority=True)["role"] == "authority"
    assert [f.image_type for f in hub.store.add([rot], hub.anchors(), hub.authorities())] == [
        0xFFC0
    ]
    hub.close()
    again = Hub(HubConfig(), state_dir=tmp_path / "hub")  # rebuilt from its event log
    assert list(again.state.authorities) == [_kid(auth)]
    assert list(again.state.anchors) == [_kid(imgs.key)]
    again.close()
