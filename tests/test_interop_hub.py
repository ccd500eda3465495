"""The hub's OTA server against a client whose every ZCL frame is zigpy's (issue 21).

The client here is a standard ZigBee OTA client: zigpy builds its requests and reads the
hub's answers (ZCLHeader and the `Ota` cluster's schemas), the link framing is
tests/interop_link.py (written from docs/link-protocol.md), and it sends none of our
manufacturer-specific frames. Nothing of `otaclient` builds or reads a frame here, so a
field the hub and the agent both get wrong would show.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import interop_link as L
import pytest
from hanota.hub import Hub, HubConfig
from hanota.hub.server import LinkSession
from hanota.rig import factory
from zigpy import types as t
from zigpy.zcl import foundation as F
from zigpy.zcl.clusters.general import Ota

V1, V2 = 0x01000000, 0x02000000
C2S = F.Direction.Client_to_Server
REQ = Ota.ServerCommandDefs  # what a client sends
RSP = Ota.client_commands  # what a server sends, by command id
DEFAULT_RSP = F.GENERAL_COMMANDS[F.GeneralCommand.Default_Response]


@pytest.fixture(scope="module")
def dev():
    """A standard client's record: no CH link key (it cannot unseal), no alerts to sign."""
    ident, rec = factory.device("sim-ppmid", ["supplier-a"], seed="interop-hub", short_addr=9)
    rec = {k: v for k, v in rec.items() if k not in ("link_key", "link_key_id")}
    return ident, rec


class ZigpyClient:
    """A ZCL OTA client on one end of a socket pair, the hub's LinkSession on the other."""

    def __init__(self, reader: Any, writer: Any, rec: dict[str, Any]) -> None:
        self.reader, self.writer = reader, writer
        self.addr = rec["short_addr"]
        self.eui = bytes.fromhex(rec["eui64"])
        self.mfr, self.itype, self.hw = (
            rec["manufacturer_code"],
            rec["image_type"],
            rec["hw_version"],
        )
        self.dec = L.Decoder()
        self.tsn = 0
        self.lseq = 0
        self.inbox: list[tuple[Any, str, Any]] = []  # (header, command name, schema object)
        self.mfr_frames = 0  # manufacturer-specific frames the hub sent (none should come)

    def send(self, cmd: Any, **fields: Any) -> None:
        self.tsn = (self.tsn + 1) & 0xFF
        self.lseq = (self.lseq + 1) & 0xFF
        hdr = F.ZCLHeader.cluster(tsn=self.tsn, command_id=cmd.id, direction=C2S)
        body = hdr.serialize() + cmd.schema(**fields).serialize()
        self.writer.write(L.encode(self.addr, 0x0000, self.lseq, body))

    async def recv(self, name: str, timeout: float = 5.0) -> Any:
        """The next command called `name` (zigpy's name), skipping others."""
        end = asyncio.get_running_loop().time() + timeout
        while True:
            for i, (_h, n, obj) in enumerate(self.inbox):
                if n == name:
                    del self.inbox[i]
                    return obj
            left = end - asyncio.get_running_loop().time()
            data = await asyncio.wait_for(self.reader.read(4096), max(0.01, left))
            for fr in self.dec.feed(data):
                self._take(fr)

    def _take(self, fr: L.Frame) -> None:
        assert (fr.src, fr.dst) == (0x0000, self.addr), fr
        hdr, rest = F.ZCLHeader.deserialize(fr.payload)
        if hdr.frame_control.is_manufacturer_specific:
            self.mfr_frames += 1
            return
        if hdr.frame_control.is_general:
            obj, extra = DEFAULT_RSP.schema.deserialize(rest)
            name = "default_response"
        else:
            cmd = RSP[hdr.command_id]
            obj, extra = cmd.schema.deserialize(rest)
            name = cmd.name
        assert extra == b"", (name, extra)  # zigpy reads every byte the hub sent
        self.inbox.append((hdr, name, obj))

    async def query(self, version: int) -> Any:
        self.send(REQ.query_next_image, field_control=REQ.query_next_image.schema.FieldControl.HardwareVersion,
                  manufacturer_code=self.mfr, image_type=self.itype,
                  current_file_version=version, hardware_version=self.hw)  # fmt: skip
        return await self.recv("query_next_image_response")

    async def blocks(self, offer: Any, max_size: int, node_addr: bool = False) -> bytes:
        """The whole file by Image Block Requests, one at a time."""
        data = bytearray()
        fc = REQ.image_block.schema.FieldControl.RequestNodeAddr if node_addr else 0
        extra = {"request_node_addr": t.EUI64(self.eui[::-1])} if node_addr else {}
        while len(data) < offer.image_size:
            self.send(REQ.image_block, field_control=fc, manufacturer_code=offer.manufacturer_code,
                      image_type=offer.image_type, file_version=offer.file_version,
                      file_offset=len(data), maximum_data_size=max_size, **extra)  # fmt: skip
            b = await self.recv("image_block_response")
            assert b.status == F.Status.SUCCESS and b.file_offset == len(data), b
            assert 0 < len(b.image_data) <= min(max_size, 254), len(b.image_data)
            data += b.image_data
        return bytes(data)

    async def pages(self, offer: Any, page: int) -> bytes:
        """The whole file by Image Page Requests of `page` bytes."""
        data = bytearray()
        while len(data) < offer.image_size:
            self.send(REQ.image_page, field_control=0, manufacturer_code=offer.manufacturer_code,
                      image_type=offer.image_type, file_version=offer.file_version,
                      file_offset=len(data), maximum_data_size=254, page_size=page,
                      response_spacing=0)  # fmt: skip
            end = min(offer.image_size, len(data) + page)
            while len(data) < end:
                b = await self.recv("image_block_response")
                assert b.status == F.Status.SUCCESS and b.file_offset == len(data), b
                data += b.image_data
        return bytes(data)

    def end(self, offer: Any, status: F.Status) -> None:
        self.send(REQ.upgrade_end, status=status, manufacturer_code=offer.manufacturer_code,
                  image_type=offer.image_type, file_version=offer.file_version)  # fmt: skip


async def _linked(hub: Hub, rec: dict[str, Any]) -> tuple[ZigpyClient, list[asyncio.Task]]:
    a, b = socket.socketpair()
    hr, hw = await asyncio.open_connection(sock=a)
    cr, cw = await asyncio.open_connection(sock=b)
    session = LinkSession(hub, "interop", hr, hw, rec["eui64"])
    tasks = [asyncio.create_task(session.run()), asyncio.create_task(hub.alert_loop())]
    return ZigpyClient(cr, cw, rec), tasks


def _hub(imgs, **cfg: Any) -> Hub:
    hub = Hub(HubConfig(confirm_delay_s=0.2, **cfg))
    hub.add_anchor(imgs.pub_path)
    return hub


@pytest.mark.parametrize("how", ["blocks-50", "blocks-255", "node-addr", "pages"])
def test_standard_client_fetches_a_fragmented_image_from_the_hub(imgs, frag2, dev, how):
    hub = _hub(imgs)
    rec = dev[1]
    hub.enrol(rec)

    async def go() -> tuple[list[bytes], Any, ZigpyClient]:
        c, tasks = await _linked(hub, rec)
        try:
            hub.submit("supplier-a", [rec["eui64"]], frag2)
            note = await c.recv("image_notify")  # the submission's, unicast
            assert (note.payload_type, note.new_file_version) == (3, V2), note
            got, offers, version = [], [], V1
            for i in range(len(frag2)):
                offer = await c.query(version)
                assert offer.status == F.Status.SUCCESS and offer.file_version == V2
                offers.append(offer)
                if how == "pages":
                    got.append(await c.pages(offer, 1000))
                else:
                    size = 50 if how == "blocks-50" else 255
                    got.append(await c.blocks(offer, size, node_addr=how == "node-addr"))
                last = i == len(frag2) - 1
                c.end(offer, F.Status.SUCCESS if last else F.Status.REQUIRE_MORE_IMAGE)
                if not last:  # ZCL OTA: a Default Response SUCCESS, nothing more
                    ack = await c.recv("default_response")
                    assert ack.command_id == REQ.upgrade_end.id and ack.status == F.Status.SUCCESS
            end = await c.recv("upgrade_end_response")
            await asyncio.sleep(0.3)
            assert not c.inbox, c.inbox  # nothing unasked: one offer per fragment
            return got, end, c
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    got, end, c = asyncio.run(asyncio.wait_for(go(), 30))
    assert got == [p.read_bytes() for p in frag2]
    assert end.file_version == V2 and end.upgrade_time <= end.current_time + 1  # now
    assert c.mfr_frames == 0
    t = hub.transfer(rec["eui64"])
    assert t.state == "complete" and t.sent == sum(p.stat().st_size for p in frag2)
    kinds = [a["kind"] for a in hub.alerts("supplier-a")]
    assert "transfer-success" in kinds and "activation" not in kinds


def test_standard_client_version_is_reported_but_never_vouched_for(imgs, dev):
    # without our Device Announce and signed alerts the hub hears the new version only in
    # the next Query Next Image Request, which anyone on the link could send: the
    # supplier's version confirmation (after confirm_wait_s) carries it as announced, and
    # does not confirm (only a signed activation alert vouches for a version)
    hub = _hub(imgs, confirm_wait_s=0.5)
    rec = dev[1]
    hub.enrol(rec)
    files = imgs.build(V2, board="sim-ppmid", size=3000, name="one")

    async def go() -> None:
        c, tasks = await _linked(hub, rec)
        try:
            hub.submit("supplier-a", [rec["eui64"]], files)
            offer = await c.query(V1)
            await c.blocks(offer, 254)
            c.end(offer, F.Status.SUCCESS)
            await c.recv("upgrade_end_response")
            no = await c.query(V2)  # "rebooted" into it: nothing more to offer
            assert no.status == F.Status.NO_IMAGE_AVAILABLE
            for _ in range(100):
                if any(a["kind"] == "version-confirmation" for a in hub.alerts("supplier-a")):
                    return
                await asyncio.sleep(0.05)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(asyncio.wait_for(go(), 30))
    conf = [a for a in hub.alerts("supplier-a") if a["kind"] == "version-confirmation"]
    assert len(conf) == 1 and conf[0]["announced_version"] == V2, conf
    assert conf[0]["matches"] is False and conf[0]["version"] != V2, conf
