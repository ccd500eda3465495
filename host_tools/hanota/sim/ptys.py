"""Pseudo-terminals of a sim board: the console (relayed, so it survives reboots) and HAN.

The console relay is the board's USB-serial chip: MicroPython's controlling terminal is a
fresh inner pty per boot; users open the outer pty, which stays put across resets.
"""

from __future__ import annotations

import errno
import os
import select
import termios
import threading
import tty
from pathlib import Path


def raw(fd: int, isig: bool = False) -> None:
    """Raw mode; with isig, Ctrl-C still raises SIGINT (MicroPython's KeyboardInterrupt)."""
    tty.setraw(fd)
    if isig:
        attrs = termios.tcgetattr(fd)
        attrs[3] |= termios.ISIG
        termios.tcsetattr(fd, termios.TCSANOW, attrs)


class HanPty:
    """The HAN link: the hub opens `path`; MicroPython inherits the master fd."""

    def __init__(self) -> None:
        self.master, self._slave = os.openpty()
        raw(self._slave)  # no echo: bytes from the hub must not bounce back to the board
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self._slave)

    def drain(self) -> None:
        """Forget bytes sent while the board was down (a UART loses them too)."""
        try:
            while os.read(self.master, 4096):
                pass
        except OSError:
            pass

    def close(self) -> None:
        for fd in (self.master, self._slave):
            os.close(fd)


class ConsolePty:
    """Outer pty for users (mpremote), relayed to the inner pty of the running MicroPython."""

    def __init__(self, log_path: Path, accept_input: bool = True) -> None:
        self._outer, self._outer_slave = os.openpty()
        raw(self._outer_slave)
        os.set_blocking(self._outer, False)
        self.path = os.ttyname(self._outer_slave)
        self._inner: int | None = None
        self._dead: int | None = None  # inner master that reported EIO (board down)
        self._accept = accept_input
        self._log = open(log_path, "ab")
        self._wake_r, self._wake_w = os.pipe()
        self._lock = threading.Lock()
        self._stop = False
        self._thread = threading.Thread(target=self._relay, name="sim-console", daemon=True)
        self._thread.start()

    def new_inner(self) -> int:
        """A fresh inner pty for the next boot; returns the slave fd for the child."""
        master, slave = os.openpty()
        raw(slave, isig=True)
        os.set_blocking(master, False)
        with self._lock:
            old, self._inner = self._inner, master
            self._dead = None
        if old is not None:
            os.close(old)
        os.write(self._wake_w, b"x")
        return slave

    def _relay(self) -> None:
        # poll(), not select(): select() fails on fds above FD_SETSIZE (1024), which a
        # fleet of boards in one runner process reaches (issue 3: 64 boards)
        while not self._stop:
            inner = self._inner
            live = inner is not None and inner != self._dead
            fds = [self._wake_r, self._outer] + ([inner] if live else [])
            ready = _wait_readable(fds, 1.0)
            if self._wake_r in ready:
                os.read(self._wake_r, 64)
            if live and inner in ready:
                self._to_outer(inner)
            if self._outer in ready:
                self._to_inner(inner)

    def _to_outer(self, inner: int) -> None:
        try:
            data = os.read(inner, 4096)
        except BlockingIOError:
            return
        except OSError:  # the board is down (EIO) or the fd was swapped: wait for wake-up
            self._dead = inner
            return
        if data:
            self._log.write(data)
            self._log.flush()
            _write_some(self._outer, data)

    def _to_inner(self, inner: int | None) -> None:
        try:
            data = os.read(self._outer, 4096)
        except OSError:
            return
        if data and inner is not None and self._accept:
            _write_some(inner, data)

    def close(self) -> None:
        self._stop = True
        os.write(self._wake_w, b"x")
        self._thread.join(timeout=2)
        with self._lock:
            fds = [self._outer, self._outer_slave, self._wake_r, self._wake_w, self._inner]
        for fd in fds:
            if fd is not None:
                os.close(fd)
        self._log.close()


def _wait_readable(fds: list[int], timeout_s: float) -> set[int]:
    """The fds of `fds` that are readable (or hung up / in error: a read will say which)."""
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN)
    try:
        events = poller.poll(int(timeout_s * 1000))
    except InterruptedError:
        return set()
    return {fd for fd, _ev in events}


def _write_some(fd: int, data: bytes) -> None:
    try:
        os.write(fd, data)
    except OSError as exc:  # nobody reading and the buffer is full: drop, as a UART would
        if exc.errno not in (errno.EAGAIN, errno.EIO):
            raise
