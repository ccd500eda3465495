"""The rig's pytest fixtures (`images`, `hub`) with the client double on a pty, so they
are exercised even where no sim board runs; sim-board tests are in test_rig_sim.py."""

from __future__ import annotations

import asyncio

from hanota.link.pty import close_pty, open_pty
from hanota.link.transport import open_fd
from hanota.rig import factory
from hanota.rig.double import ClientDouble
from otaclient import zcl

V1, V2 = 0x01000000, 0x02000000


def test_hub_fixture_serves_a_pty_device_and_raises_every_alert(hub, images):
    files = images.build(V2, board="sim-ihd", size=9000, max_size=8500)
    ident, rec = factory.device("sim-ihd", ["supplier-a", "supplier-b"], seed="fx", short_addr=4)
    master, slave = open_pty()
    try:
        hub.attach_port(slave, rec)
        res = hub.call(hub.hub.submit, "supplier-b", [rec["eui64"]], files)
        assert res["fragments"] == 2

        async def device():
            r, w = await open_fd(master)
            c = ClientDouble(r, w, rec["eui64"], rec["short_addr"], ident.device_key,
                             rec["manufacturer_code"], rec["image_type"], rec["hw_version"],
                             V1, rec["suppliers"])  # fmt: skip
            await c.announce()
            await c.recv(zcl.ImageNotify)
            await c.update()
            c.close()

        asyncio.run(asyncio.wait_for(device(), 30))
        hub.wait(lambda: hub.hub.settled(), 15, "alerts")
    finally:
        close_pty(master)
    got = sorted((a["supplier"], a["kind"]) for a in hub.call(hub.hub.alerts))
    assert got == sorted([
        ("supplier-b", "submission-processed"), ("supplier-b", "transfer-success"),
        ("supplier-a", "activation"), ("supplier-b", "activation"),
        ("supplier-a", "version-confirmation"), ("supplier-b", "version-confirmation"),
    ])  # fmt: skip


def test_images_fixture_builds_fragment_sets(images):
    files = images.build(V2, board="sim-ppmid", size=20000, max_size=9000, name="fx-set")
    assert len(files) == 3 and all(f.stat().st_size <= 9000 for f in files)
    assert images.pub_path.read_bytes().startswith(b"-----BEGIN PUBLIC KEY")
