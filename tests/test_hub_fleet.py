"""One hub serving many devices at once (client doubles over socket pairs)."""

from __future__ import annotations

import asyncio
import socket
import time

from hanota.hub import Hub, HubConfig
from hanota.hub.server import LinkSession
from hanota.rig import factory
from hanota.rig.double import ClientDouble

N = 32
V1, V2 = 0x01000000, 0x02000000


def test_32_devices_updated_at_once_every_alert_accounted(tmp_path):
    imgs = factory.Images(tmp_path / "img")
    files = imgs.build(V2, board="sim-ppmid", size=8192 + 30000, max_size=40000)
    hub = Hub(HubConfig(confirm_delay_s=0.2, stagger_s=0.3), state_dir=tmp_path / "hub")
    hub.add_anchor(imgs.pub_path)
    devs = [factory.device("sim-ppmid", ["supplier-a", "supplier-b"], seed=f"fleet{i}",
                           short_addr=i + 1) for i in range(N)]  # fmt: skip
    for _ident, rec in devs:
        hub.enrol(rec)

    async def one(ident, rec, tasks):
        a, b = socket.socketpair()
        hr, hw = await asyncio.open_connection(sock=a)
        cr, cw = await asyncio.open_connection(sock=b)
        tasks.append(
            asyncio.create_task(LinkSession(hub, rec["eui64"], hr, hw, rec["eui64"]).run())
        )
        c = ClientDouble(cr, cw, rec["eui64"], rec["short_addr"], ident.device_key,
                         rec["manufacturer_code"], rec["image_type"], rec["hw_version"], V1,
                         rec["suppliers"])  # fmt: skip
        got = await c.update()
        c.close()
        return got

    async def go():
        tasks = [asyncio.create_task(hub.alert_loop())]
        hub.submit("supplier-a", [r["eui64"] for _i, r in devs], files)
        t0 = time.monotonic()
        results = await asyncio.gather(*(one(i, r, tasks) for i, r in devs))
        took = time.monotonic() - t0
        while not hub.settled():
            await asyncio.sleep(0.05)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return results, took

    results, took = asyncio.run(asyncio.wait_for(go(), 60))
    want = [f.read_bytes() for f in files]
    assert all(r == want for r in results)
    alerts = hub.alerts()
    per = {(a["device"], a["supplier"], a["kind"]) for a in alerts}
    assert len(per) == len(alerts)  # one per supplier, device and kind: never grouped
    assert len(alerts) == N * (1 + 1 + 2 + 2)  # submitted, success, 2 activations, 2 confirms
    total = N * sum(f.stat().st_size for f in files)
    print(f"\n{N} devices, {total} bytes in {took:.2f} s: {total / took / 1e6:.2f} MB/s")
