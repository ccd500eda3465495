"""asyncio byte streams over a serial port (pyserial) or a pty path or an open fd.

Used by the hub and the link emulator. No framing here: see otaclient.link.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

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
