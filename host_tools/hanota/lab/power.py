"""The power switch of a lab host's sim boards, answering labgrid's `simplerest` model.

labgrid's NetworkPowerPort with `model: simplerest` takes a URL template in `host`; its
driver (labgrid/driver/power/simplerest.py) switches with GET host.format(value=1|0,
index=I) and reads with GET host.format(value="", index=I).rstrip("/"), expecting the
body "1" or "0". This server's template is `http://127.0.0.1:PORT/power/{index}/{value}`:

    GET /power/I/1   power outlet I on  (200, body "1")
    GET /power/I/0   power outlet I off (200, body "0"): the board's supply is cut
    GET /power/I     outlet I's state   (200, body "1" or "0")

An unknown outlet or value is a 404 or 400, which the driver raises as an error.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol

from ..output import log


class Outlet(Protocol):
    @property
    def powered(self) -> bool: ...

    def power(self, on: bool) -> None: ...


def template(port: int, host: str = "127.0.0.1") -> str:
    """The simplerest URL template for a switch on host:port."""
    return f"http://{host}:{port}/power/{{index}}/{{value}}"


class PowerSwitch:
    """An HTTP server in a thread: outlet index -> the board it feeds."""

    def __init__(self, port: int, outlets: dict[int, Outlet], host: str = "127.0.0.1") -> None:
        self.outlets = outlets
        self._lock = threading.Lock()  # one switching at a time, as on a PDU
        self._server = ThreadingHTTPServer((host, port), _handler(self._answer))
        self._server.daemon_threads = True
        self.host, self.port = self._server.server_address[:2]
        self._thread = threading.Thread(target=self._server.serve_forever, name="power",
                                        daemon=True)  # fmt: skip
        self._thread.start()

    @property
    def template(self) -> str:
        return template(self.port, self.host)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _answer(self, path: str) -> tuple[int, str]:
        parts = path.strip("/").split("/")
        if len(parts) not in (2, 3) or parts[0] != "power" or not parts[1].isdigit():
            return 404, "not a power outlet path\n"
        outlet = self.outlets.get(int(parts[1]))
        if outlet is None:
            return 404, f"no outlet {parts[1]}\n"
        if len(parts) == 2:
            return 200, "1" if outlet.powered else "0"
        if parts[2] not in ("0", "1"):
            return 400, "value must be 0 or 1\n"
        with self._lock:
            outlet.power(parts[2] == "1")
        return 200, parts[2]


def _handler(answer: Callable[[str], tuple[int, str]]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            try:
                status, body = answer(self.path.split("?", 1)[0])
            except Exception as exc:  # a failed power-on: the driver sees a 500
                log(f"lab: power {self.path}: {exc}")
                status, body = 500, f"{exc}\n"
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass  # requests are not logged: the host logs each switching itself

    return Handler
