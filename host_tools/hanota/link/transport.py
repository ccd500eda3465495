"""asyncio byte streams over a serial port (pyserial), a pty path, an open fd, or a link
named by URL (`socket://HOST:PORT`, `rfc2217://...` and pyserial's other URLs).

Used by the hub and the link emulator. No framing here: see otaclient.link.
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any
from urllib.parse import urlsplit

import serial


class _FdWriter(asyncio.StreamWriter):
    """A StreamWriter whose close() also closes the read side and any serial port."""

    _extra_close: list[Any]

    def close(self) -> None:
        super().close()
        for thing in self._extra_close:
            thing.close()
        self._extra_close = []


async def open_fd(fd: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Streams over a readable+writable fd (pty master, serial fd). The fd is dup'ed:
    the caller still owns (and closes) `fd`; writer.close() releases the duplicates."""
    return await _open(fd, None)


async def _open(fd: int, owner: Any) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    rfile = os.fdopen(os.dup(fd), "rb", buffering=0)
    wfile = os.fdopen(os.dup(fd), "wb", buffering=0)
    rtransport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), rfile
    )
    wtransport, wproto = await loop.connect_write_pipe(
        lambda: asyncio.streams.FlowControlMixin(), wfile
    )
    writer = _FdWriter(wtransport, wproto, reader, loop)
    writer._extra_close = [rtransport] + ([owner] if owner is not None else [])
    return reader, writer


def open_serial_port(path: str, baud: int = 115200) -> serial.Serial:
    """Open a serial device or pty path raw, non-blocking, exclusively (8N1, no flow control)."""
    try:
        return serial.Serial(path, baudrate=baud, timeout=0, exclusive=True)
    except (serial.SerialException, OSError) as e:
        raise ConnectionError(f"cannot open serial port {path}: {e}") from e


async def open_serial(
    path: str, baud: int = 115200
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Streams over a serial port or pty path; writer.close() closes the port."""
    port = open_serial_port(path, baud)
    return await _open(port.fileno(), port)


async def open_link(
    where: str, baud: int = 115200
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter | UrlWriter]:
    """Streams over the link `where` names: `socket://HOST:PORT` is a raw TCP byte stream
    (a port exported by labgrid's NetworkSerialPort without RFC 2217, or by ser2net's raw
    mode); any other `scheme://` is opened by pyserial's serial_for_url (`rfc2217://`,
    `loop://` ...); anything else is a serial device or pty path. ConnectionError when it
    cannot be opened; writer.close() releases it."""
    if where.startswith("socket://"):
        parts = urlsplit(where)
        if not parts.hostname or not parts.port:
            raise ConnectionError(f"cannot open {where}: want socket://HOST:PORT")
        try:
            return await asyncio.open_connection(parts.hostname, parts.port)
        except OSError as e:
            raise ConnectionError(f"cannot open {where}: {e}") from e
    if "://" in where:
        return await _open_url(where, baud)
    return await open_serial(where, baud)


class UrlWriter:
    """The write side of a pyserial URL port (no fd to poll): writes go to the port from
    the event loop's thread; close() stops the reader thread and closes the port."""

    def __init__(self, port: Any, stop: threading.Event) -> None:
        self._port, self._stop = port, stop

    def write(self, data: bytes) -> None:
        if self._stop.is_set():
            raise ConnectionError("link closed")
        self._port.write(data)

    async def drain(self) -> None:
        return None

    def is_closing(self) -> bool:
        return self._stop.is_set()

    def close(self) -> None:
        self._stop.set()


async def _open_url(url: str, baud: int) -> tuple[asyncio.StreamReader, UrlWriter]:
    loop = asyncio.get_running_loop()
    try:
        port = await asyncio.to_thread(serial.serial_for_url, url, baudrate=baud, timeout=0.05)
    except (serial.SerialException, OSError, ValueError) as e:
        raise ConnectionError(f"cannot open {url}: {e}") from e
    reader = asyncio.StreamReader(limit=1 << 20)
    stop = threading.Event()

    def pump() -> None:
        # the port's reads block (up to its timeout): a thread hands what comes to the loop
        try:
            while not stop.is_set():
                data = port.read(4096)
                if data:
                    loop.call_soon_threadsafe(reader.feed_data, data)
        except (serial.SerialException, OSError):
            pass
        finally:
            stop.set()
            port.close()
            loop.call_soon_threadsafe(reader.feed_eof)

    threading.Thread(target=pump, name=f"link {url}", daemon=True).start()
    return reader, UrlWriter(port, stop)
