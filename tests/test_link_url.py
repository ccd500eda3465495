"""Links named by URL (transport.open_link): the hub serves a device whose link is a raw
TCP port on another host (socket://, as labgrid's NetworkSerialPort exports one) and
reconnects when that host's end goes away; pyserial's other URLs through a reader thread."""

from __future__ import annotations

import asyncio

import pytest
from hanota.hub import Hub, HubConfig
from hanota.hub.server import parse_link, serve_path
from hanota.link.transport import open_link
from hanota.rig import factory
from hanota.rig.double import ClientDouble

V1, V2 = 0x01000000, 0x02000000


@pytest.fixture(scope="module")
def dev():
    return factory.device("sim-ppmid", ["supplier-a"], seed="link-url", short_addr=23)


def test_a_url_link_keeps_its_options_and_its_eui64():
    spec = "rfc2217://lab-host:4001?logging=debug=00112233AABBCCDD"
    assert parse_link(spec) == ("rfc2217://lab-host:4001?logging=debug", "00112233aabbccdd")
    assert parse_link("socket://10.0.0.5:5000=00112233aabbccdd")[0] == "socket://10.0.0.5:5000"
    with pytest.raises(ValueError, match="want PATH=EUI64"):
        parse_link("socket://10.0.0.5:5000")


def test_pyserial_url_streams_both_ways():
    async def go() -> bytes:
        reader, writer = await open_link("loop://")
        writer.write(b"\x01\x02\x00hanota\x00")
        got = await asyncio.wait_for(reader.readexactly(10), 5)
        writer.close()
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed: EOF, thread gone
        return got

    assert asyncio.run(go()) == b"\x01\x02\x00hanota\x00"


def test_unreachable_socket_url_is_a_clear_connection_error():
    async def go() -> None:
        await open_link("socket://127.0.0.1:1")

    with pytest.raises(ConnectionError, match="cannot open socket://127.0.0.1:1"):
        asyncio.run(go())


def test_hub_serves_a_device_over_a_tcp_link_and_reconnects(tmp_path, dev, images):
    files = images.build(V2, board="sim-ppmid", size=8192 + 4000, max_size=8500)
    ident, rec = dev
    hub = Hub(HubConfig(confirm_delay_s=0.2), state_dir=tmp_path / "hub")
    hub.add_anchor(images.pub_path)
    hub.enrol(rec)

    async def go() -> list[bytes]:
        conns: asyncio.Queue = asyncio.Queue()

        async def exported(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            await conns.put((r, w))  # the board host's end of the link

        server = await asyncio.start_server(exported, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        served = asyncio.create_task(
            serve_path(hub, f"socket://127.0.0.1:{port}", rec["eui64"], retry_s=0.1)
        )
        alerts = asyncio.create_task(hub.alert_loop())
        try:
            r, w = await asyncio.wait_for(conns.get(), 10)
            w.close()  # the exporter goes away: the hub opens the link again
            r, w = await asyncio.wait_for(conns.get(), 10)
            client = ClientDouble(r, w, rec["eui64"], rec["short_addr"], ident.device_key,
                                  rec["manufacturer_code"], rec["image_type"], rec["hw_version"],
                                  V1, rec["suppliers"])  # fmt: skip
            hub.submit("supplier-a", [rec["eui64"]], files)
            got = await client.update()
            for _ in range(200):
                if hub.settled():
                    break
                await asyncio.sleep(0.05)
            client.close()
            return got
        finally:
            for t in (served, alerts):
                t.cancel()
            await asyncio.gather(served, alerts, return_exceptions=True)
            server.close()

    try:
        got = asyncio.run(asyncio.wait_for(go(), 60))
    finally:
        hub.close()
    assert got == [f.read_bytes() for f in files]
    assert hub.state.devices[rec["eui64"]].version == V2
    assert "activation" in [a["kind"] for a in hub.alerts()]
