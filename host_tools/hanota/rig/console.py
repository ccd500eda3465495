"""Reading a real board's console (USB serial) during a rig run, for the agent's heap
report: pyserial on `--port`, in a thread, everything kept in memory.

One process owns a serial port at a time: a `hanota board monitor` on the same port is
paused (board.monitor.handed_over: SIGUSR1, it closes the port) while the rig reads, and
resumed after (SIGUSR2). The rig never writes to the console: the agent keeps running.

After a run, the agent's crashes on a console (a sim's or this capture's) are logged with
their tracebacks, short names read back (hanota.namemap, `log_crashes`).
"""

from __future__ import annotations

import threading
import time
from contextlib import ExitStack
from typing import Any

from .. import namemap
from ..output import log

OPEN_RETRY_S = 5.0  # a board may still be re-enumerating (USB CDC) after a reset


class ConsoleCapture:
    """`with ConsoleCapture(port) as c:` ... `c.text()`: what the board printed meanwhile."""

    def __init__(self, port: str, baud: int = 115200):
        self.port, self.baud = port, baud
        self._buf = bytearray()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ser: Any = None
        self._stack = ExitStack()

    def __enter__(self) -> ConsoleCapture:
        from hanota.board.monitor import handed_over

        self._stack.enter_context(handed_over(self.port))
        try:
            self._ser = _open(self.port, self.baud)
        except Exception:
            self._stack.close()
            raise
        self._thread = threading.Thread(target=self._read, name="rig-console", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self._ser is not None:
            self._ser.close()
            self._ser = None
        self._stack.close()  # a paused monitor takes the port back

    @property
    def is_open(self) -> bool:
        return self._ser is not None

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._ser.read(4096)
            except Exception:  # unplugged mid-run: keep what we have, try to reopen
                time.sleep(0.2)
                try:
                    self._ser.close()
                    self._ser = _open(self.port, self.baud, retry_s=0.5)
                except Exception:
                    pass
                continue
            if data:
                with self._lock:
                    self._buf += data

    def text(self) -> bytes:
        with self._lock:
            return bytes(self._buf)


def _open(port: str, baud: int, retry_s: float = OPEN_RETRY_S) -> Any:
    import serial

    end = time.monotonic() + retry_s
    while True:
        try:
            return serial.serial_for_url(port, baud, timeout=0.1)  # a device, or socket://
        except (serial.SerialException, OSError) as exc:
            if time.monotonic() > end:
                raise ConnectionError(f"cannot open the board's console {port}: {exc}") from exc
            time.sleep(0.1)


def crash_lines(text: str, nmap: namemap.NameMap) -> list[str]:
    """The agent's crash reports in console text: each `agent: crashed: ...` line and the
    traceback logged after it, short names read back through `nmap`."""
    lines = namemap.translate(text, nmap).splitlines()
    out = []
    for i, line in enumerate(lines):
        if "agent: crashed:" not in line:
            continue
        out.append(line)
        rest = iter(lines[i + 1 :])
        if (nxt := next(rest, "")).lstrip().startswith("Traceback"):
            out.append(nxt)
            for frame in rest:  # the File lines, then the exception line
                out.append(frame)
                if not frame.lstrip().startswith("File "):
                    break
    return out


def log_crashes(text: bytes | None) -> None:
    """Log the agent's crashes on a board's console, read with this checkout's firmware
    map (what the rig's boards run unless given other app bytes)."""
    if not text or b"agent: crashed:" not in text:
        return
    from ..mpycross import firmware_namemap

    for line in crash_lines(text.decode(errors="replace"), namemap.load(firmware_namemap())):
        log(f"rig: board console: {line}")
