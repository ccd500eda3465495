"""The hub's half of the CH link key (issue 20 item 6): enrolment keeps the key out of the
event log, refuses to change it silently, and the link session seals every command to the
device in its session, never an Image Block Response (CPython, a raw device end)."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest
from hanota.hub import Hub, HubConfig, HubError
from hanota.hub.linkkeys import key_id
from hanota.hub.server import LinkSession
from hanota.rig import factory
from otaclient import link, zcl

V1 = 0x01000000
SUPS = ["supplier-a"]
N1, N2 = bytes.fromhex("1111111111111111"), bytes.fromhex("2222222222222222")


@pytest.fixture(scope="module")
def dev():
    return factory.device("sim-ppmid", SUPS, seed="link-mic-hub", short_addr=7)


def test_enrol_keeps_the_link_key_in_a_0600_file_and_its_id_in_the_log(tmp_path, dev):
    _ident, rec = dev
    key = bytes.fromhex(rec["link_key"])
    hub = Hub(HubConfig(), state_dir=tmp_path)
    out = hub.enrol(rec)
    hub.close()
    assert out["link_key_id"] == key_id(key) and "link_key" not in out
    path = tmp_path / "credentials" / f"link-{rec['eui64']}.key"
    assert path.read_text().strip() == key.hex() and (path.stat().st_mode & 0o077) == 0
    log = (tmp_path / "events.jsonl").read_text()
    assert key.hex() not in log and key_id(key) in log
    again = Hub(HubConfig(), state_dir=tmp_path)  # a restarted hub seals with the same key
    assert again.link_keys.get(rec["eui64"]) == key
    again.close()


def test_enrol_refuses_another_link_key_without_replace_key(dev):
    _ident, rec = dev
    hub = Hub(HubConfig())
    seen: list[dict] = []
    hub.subscribe(seen.append)
    hub.enrol(rec)
    rogue = dict(rec, link_key="00" * 16)
    with pytest.raises(HubError, match="another CH link key.*--replace-key"):
        hub.enrol(rogue)
    assert hub.link_keys.get(rec["eui64"]) == bytes.fromhex(rec["link_key"])
    hub.enrol(rogue, replace_key=True)
    assert hub.link_keys.get(rec["eui64"]) == bytes(16)
    ev = [e for e in seen if e["kind"] == "key-replaced"]
    assert ev and ev[-1]["old_link_key_id"] == key_id(bytes.fromhex(rec["link_key"]))
    with pytest.raises(HubError, match="link_key"):
        hub.enrol(dict(rec, link_key="zz"))


class Device:
    """The device end of a link: raw link frames, no agent."""

    def __init__(self, reader, writer, addr: int):
        self.reader, self.writer, self.addr = reader, writer, addr
        self.dec = link.Decoder()
        self.seq = 0

    def send(self, obj) -> None:
        self.seq += 1
        self.writer.write(link.encode(self.addr, 0, self.seq, zcl.encode_command(obj, self.seq)))

    async def recv(self) -> tuple[int, int, bytes]:
        """(src, dst, link payload) of the next frame from the hub."""
        while True:
            f = self.dec.next()
            if f is not None:
                return f[0], f[1], f[3]
            data = await asyncio.wait_for(self.reader.read(4096), 5)
            assert data, "link closed"
            self.dec.feed(data)


def opened(key: bytes, nonce: bytes, frame: tuple[int, int, bytes]) -> tuple[int, object]:
    """(counter, command) of a sealed frame, as the device checks it; counter -1: not sealed."""
    src, dst, payload = frame
    c = link.unseal(link.pads(key), nonce, src, dst, payload)
    z = payload[: -link.SEC_LEN] if c > 0 else payload
    cmd, _seq, s2c, mfr, p = zcl.decode_frame(z)
    return c, zcl.decode_command(cmd, p, s2c, mfr)


def test_hub_seals_commands_in_the_device_session_and_never_block_responses(dev, imgs):
    ident, rec = dev
    key = bytes.fromhex(rec["link_key"])
    files = imgs.build(0x02000000, board="sim-ppmid", size=3000)
    hub = Hub(HubConfig(check_images=False))
    seen: list[dict] = []
    hub.subscribe(seen.append)
    hub.enrol(rec)
    mfr, itype, hw = rec["manufacturer_code"], rec["image_type"], rec["hw_version"]
    query = zcl.QueryNextImageReq(1, mfr, itype, V1, hw)

    async def go():
        a, b = socket.socketpair()
        hr, hw_ = await asyncio.open_connection(sock=a)
        dr, dw = await asyncio.open_connection(sock=b)
        session = LinkSession(hub, "pair", hr, hw_, rec["eui64"])
        task = asyncio.create_task(session.run())
        d = Device(dr, dw, rec["short_addr"])
        d.send(query)  # no session yet: the answer goes unsealed (the device refuses it)
        c, rsp = opened(key, N1, await d.recv())
        assert c == -1 and rsp.status == zcl.NO_IMAGE_AVAILABLE
        assert session.stats["unsealed"] == 1
        d.send(zcl.LinkSession(N1))
        await asyncio.sleep(0.05)
        hub.submit("supplier-a", [rec["eui64"]], files)  # pushes a sealed Image Notify
        c, notify = opened(key, N1, await d.recv())
        assert c == 1 and isinstance(notify, zcl.ImageNotify)
        d.send(query)
        c, rsp = opened(key, N1, await d.recv())
        assert c == 2 and rsp.status == zcl.SUCCESS and rsp.version == 0x02000000
        d.send(zcl.ImageBlockReq(0, mfr, itype, rsp.version, 0, 64, None, None))
        c, blk = opened(key, N1, await d.recv())
        assert c == -1 and blk.data == files[0].read_bytes()[:64]  # never sealed
        d.send(zcl.LinkSession(N1))  # the same nonce again (a replay): counters go on
        d.send(query)
        assert opened(key, N1, await d.recv())[0] == 3
        d.send(zcl.LinkSession(N2))  # a new session: from 1, under the new nonce
        frame = await d.recv()  # the device refused something: its offer again, at once
        assert link.unseal(link.pads(key), N1, *frame) == -1
        c, again = opened(key, N2, frame)
        assert c == 1 and isinstance(again, zcl.ImageNotify) and again.version == 0x02000000
        d.send(query)
        assert opened(key, N2, await d.recv())[0] == 2
        dw.close()
        await asyncio.wait_for(task, 5)
        return session

    session = asyncio.run(go())
    assert session.stats["link_sessions"] == 2
    assert [e["kind"] for e in seen].count("link-session") == 2
    assert rec["link_key"] not in json.dumps(seen)
    assert ident.link_key == key
