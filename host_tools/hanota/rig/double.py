"""A scripted OTA client double: speaks otaclient.link frames + otaclient.zcl over asyncio
streams, for hub tests and fleet benchmarks without MicroPython.

It does only what a test scripts; it checks nothing about images (no slot, no verify).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

from otaclient import link, p256, zcl

HUB_ADDR = 0x0000


class ClientDouble:
    """One device end of a link. `update()` runs a whole fragmented update."""

    def __init__(self, reader: Any, writer: Any, eui64: str, short_addr: int,
                 device_key: bytes, mfr: int, image_type: int, hw_version: int,
                 version: int, suppliers: list[str]):  # fmt: skip
        self.reader, self.writer = reader, writer
        self.eui = bytes.fromhex(eui64)
        self.addr = short_addr
        self.key = device_key
        self.mfr, self.image_type, self.hw = mfr, image_type, hw_version
        self.version = version
        self.suppliers = suppliers
        self.inbox: asyncio.Queue[Any] = asyncio.Queue()
        self.received = 0
        self._seq = 0
        self._counter = 0
        self._reader_task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        dec = link.Decoder()
        while True:
            data = await self.reader.read(4096)
            if not data:
                await self.inbox.put(None)
                return
            self.received += len(data)
            dec.feed(data)
            while (fr := dec.next()) is not None:
                cmd, _zs, s2c, mfr, body = zcl.decode_frame(fr[3])
                await self.inbox.put(zcl.decode_command(cmd, body, s2c, mfr))

    def send(self, obj: Any) -> None:
        self._seq = (self._seq + 1) & 0xFF
        self.writer.write(
            link.encode(self.addr, HUB_ADDR, self._seq, zcl.encode_command(obj, self._seq))
        )

    def send_raw(self, data: bytes) -> None:
        self.writer.write(data)

    async def recv(self, kind: type | None = None, timeout: float = 5.0) -> Any:
        """The next message (of `kind`, skipping others); TimeoutError if none comes."""
        end = time.monotonic() + timeout
        while True:
            msg = await asyncio.wait_for(self.inbox.get(), max(0.01, end - time.monotonic()))
            if kind is None or isinstance(msg, kind) or msg is None:
                return msg

    async def announce(self, boot_status: int = 0) -> None:
        self.send(zcl.DeviceAnnounce(self.eui, self.hw, self.version, boot_status))

    async def query(self) -> Any:
        self.send(zcl.QueryNextImageReq(1, self.mfr, self.image_type, self.version, self.hw))
        return await self.recv(zcl.QueryNextImageRsp)

    async def fetch(self, rsp: Any, page: int = 4096, max_size: int = 254) -> bytes:
        """All of a file by Image Page Requests; returns its bytes (raises on ABORT)."""
        buf = bytearray()
        while len(buf) < rsp.size:
            self.send(zcl.ImagePageReq(1, rsp.mfr, rsp.image_type, rsp.version, len(buf),
                                       max_size, page, 0, self.eui))  # fmt: skip
            want = min(rsp.size, len(buf) + page)
            while len(buf) < want:
                blk = await self.recv(zcl.ImageBlockRsp)
                if blk is None or blk.status != zcl.SUCCESS:
                    return_status = None if blk is None else blk.status
                    raise RuntimeError(f"transfer stopped: status {return_status}")
                if blk.offset == len(buf):
                    buf += blk.data
        return bytes(buf)

    async def end(self, status: int, rsp: Any) -> None:
        self.send(zcl.UpgradeEndReq(status, rsp.mfr, rsp.image_type, rsp.version))

    def alert(self, supplier: str, version: int, result: int, bad_sig: bool = False) -> int:
        self._counter += 1
        body = zcl.encode_activation_alert(zcl.ALERT_CODE_ACTIVATION, supplier, version, result,
                                           0, self._counter, None)  # fmt: skip
        digest = hashlib.sha256(zcl.alert_signed_bytes(self.eui, body)).digest()
        sig = p256.sign(self.key, digest)
        if bad_sig:
            sig = bytes([sig[0] ^ 1]) + sig[1:]
        self.send(zcl.ActivationAlert(zcl.ALERT_CODE_ACTIVATION, supplier, version, result, 0,
                                      self._counter, sig))  # fmt: skip
        return self._counter

    async def update(self, page: int = 4096, max_size: int = 254) -> list[bytes]:
        """Query, fetch every fragment, end, wait for the time, 'reboot' into it, alert."""
        files = []
        while True:
            rsp = await self.query()
            if rsp.status != zcl.SUCCESS:
                raise RuntimeError(f"query: status {rsp.status:#x}")
            files.append(await self.fetch(rsp, page, max_size))
            last = _fragment(files[-1])
            await self.end(zcl.SUCCESS if last else zcl.REQUIRE_MORE_IMAGE, rsp)
            if last:
                break
            ack = await self.recv(zcl.DefaultRsp)  # ZCL OTA: the client queries again
            if (ack.cmd, ack.status) != (zcl.UPGRADE_END_REQ, zcl.SUCCESS):
                raise RuntimeError(f"REQUIRE_MORE_IMAGE answered {ack}")
        end = await self.recv(zcl.UpgradeEndRsp, timeout=10)
        wait = max(0, end.upgrade_time - end.current_time) if end.current_time else end.upgrade_time
        await asyncio.sleep(min(wait, 5))
        self.version = rsp.version
        await self.announce(zcl.BOOT_ACTIVATED)
        for s in self.suppliers:
            self.alert(s, self.version, zcl.RESULT_SUCCESS)
            await self.recv(zcl.AlertAck)
        return files

    def close(self) -> None:
        self._reader_task.cancel()
        self.writer.close()


def _fragment(data: bytes) -> bool:
    """True if this OTA file is the last fragment of its set."""
    from otaclient import image

    head = image.parse_header(data)
    man = image.parse_manifest(memoryview(data)[head.header_length :], head)
    return man.fragment_index == man.fragment_count - 1
