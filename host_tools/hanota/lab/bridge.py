"""A raw TCP endpoint for one port of a sim board (console or HAN), as labgrid's
`NetworkSerialPort` with `protocol: raw` describes it and its `SerialDriver` opens it
(`socket://HOST:PORT`).

The listening socket lives as long as the endpoint, across the board's power cycles: it
stands for a USB-UART adapter powered from the host, not from the board. While the board
is off (`detach()`), a connected client stays connected and what it sends is dropped; at
power on (`attach(pty_path)`) the bridge opens the board's new pty and carries bytes both
ways, unchanged (mpremote's Ctrl-C and raw REPL pass as they are).

One client at a time: a new connection replaces the one before it, which is closed. A
client that died without closing (a killed rig) cannot then lock the port out, and
labgrid's acquisition already keeps two users off one place.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import threading

_CHUNK = 4096
_WRITE_WAIT_MS = 2000  # a stuck reader on one side: give up on this chunk after this long


class Endpoint:
    """127.0.0.1:`port`, bridged to whichever pty is attached."""

    def __init__(self, name: str, port: int, host: str = "127.0.0.1") -> None:
        self.name = name
        self._listen = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # a restarted host binds the same port while old connections sit in TIME_WAIT
        self._listen.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listen.bind((host, port))
        self._listen.listen(4)
        self._listen.setblocking(False)
        self.host, self.port = self._listen.getsockname()
        self._client: socket.socket | None = None
        self._pty: int | None = None
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name=f"bridge {name}", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"socket://{self.host}:{self.port}"

    @property
    def connected(self) -> bool:
        return self._client is not None

    def attach(self, pty_path: str) -> None:
        """The board is powered: carry bytes to and from its pty `pty_path`."""
        fd = os.open(pty_path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        with self._lock:
            self._discard_pending()  # what arrived before this moment was sent while off
            old, self._pty = self._pty, fd
        if old is not None:
            os.close(old)
        self._wake()

    def detach(self) -> None:
        """The board is off: its pty goes; the client stays and its bytes are dropped."""
        with self._lock:
            old, self._pty = self._pty, None
        if old is not None:
            os.close(old)
        self._wake()

    def close(self) -> None:
        self._stop = True
        self._wake()
        self._thread.join(timeout=5)
        self.detach()
        self._drop_client()
        self._listen.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    def _discard_pending(self) -> None:
        client = self._client
        if client is None or self._pty is not None:
            return
        with contextlib.suppress(OSError):  # nothing more now (or reset: the thread sees it)
            while client.recv(_CHUNK):
                pass
        # an empty read (the client closed) is left for the thread to notice

    def _drop_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def _run(self) -> None:
        while not self._stop:
            client, pty = self._client, self._pty
            poller = select.poll()
            poller.register(self._wake_r, select.POLLIN)
            poller.register(self._listen, select.POLLIN)
            if client is not None:
                poller.register(client, select.POLLIN)
            if pty is not None:
                poller.register(pty, select.POLLIN)
            try:
                ready = {fd: ev for fd, ev in poller.poll(1000)}
            except InterruptedError:
                continue
            if self._wake_r in ready:
                os.read(self._wake_r, 64)
            with self._lock:  # attach/detach close fds: not while this thread uses them
                if self._listen.fileno() in ready:
                    self._accept()
                if client is not None and client is self._client and client.fileno() in ready:
                    self._from_client(client)
                if pty is not None and pty == self._pty and pty in ready:
                    self._from_pty(pty)

    def _accept(self) -> None:
        try:
            conn, _ = self._listen.accept()
        except (BlockingIOError, InterruptedError):
            return
        conn.setblocking(False)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._drop_client()
        self._client = conn

    def _from_client(self, client: socket.socket) -> None:
        try:
            data = client.recv(_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the client closed (or reset) its connection
            self._drop_client()
            return
        if self._pty is not None:
            _write_fd(self._pty, data)

    def _from_pty(self, pty: int) -> None:
        try:
            data = os.read(pty, _CHUNK)
        except BlockingIOError:
            return
        except OSError:  # EIO: the board's side went away; detach() follows at power off
            self._pty = None
            os.close(pty)
            return
        if data and self._client is not None:
            try:
                _send_all(self._client, data)
            except OSError:
                self._drop_client()


def _write_fd(fd: int, data: bytes) -> None:
    """All of `data` to a non-blocking pty, waiting for room; dropped (as a UART drops
    bytes nobody reads) if the other side does not take it in time."""
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            n = 0
        except OSError as exc:
            if exc.errno == errno.EIO:
                return
            raise
        view = view[n:]
        if view and not select.select([], [fd], [], _WRITE_WAIT_MS / 1000)[1]:
            return


def _send_all(sock: socket.socket, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = sock.send(view)
        except BlockingIOError:
            n = 0
        view = view[n:]
        if view and not select.select([], [sock], [], _WRITE_WAIT_MS / 1000)[1]:
            raise TimeoutError("client not reading")
