"""Local control API: JSON lines over a Unix socket beside the hub's state, so that
`hanota hub enrol|submit|discard|...` reach a running `hanota hub serve`.

One request per line {"op": ..., "args": {...}}, one reply per line {"ok": true,
"result": ...} or {"ok": false, "error": "..."}. No authentication beyond file modes.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import tempfile
from pathlib import Path
from typing import Any

from .core import Hub, HubError

_MAX_SUN_PATH = 100


def address(state_dir: Path) -> str:
    """STATE/control.sock, or a short path in /tmp when that is too long for AF_UNIX."""
    path = str(Path(state_dir).resolve() / "control.sock")
    if len(path) <= _MAX_SUN_PATH:
        return path
    tag = hashlib.sha256(path.encode()).hexdigest()[:12]
    return os.path.join(tempfile.gettempdir(), f"hanota-hub-{tag}.sock")


def execute(hub: Hub, op: str, args: dict[str, Any]) -> Any:
    """Run one control operation on a hub (served or opened offline)."""
    ops = {
        "ping": lambda: {"events": hub.state.n_events},
        "enrol": lambda: hub.enrol(args["record"]),
        "submit": lambda: hub.submit(
            args["supplier"], args["devices"], args["files"], args.get("activate_at")
        ),
        "discard": lambda: hub.discard(
            args["supplier"], args.get("submission"), args.get("devices") or None
        ),
        "activate": lambda: hub.activate(args["submission"], args.get("at")),
        "meter": lambda: hub.meter_upgrade(args.get("device"), bool(args.get("on", True))),
        "inventory": hub.inventory,
        "alerts": lambda: hub.alerts(args.get("supplier"), bool(args.get("pending"))),
    }
    if op not in ops:
        raise HubError(f"unknown control operation {op!r} (known: {', '.join(ops)})")
    try:
        return ops[op]()
    except KeyError as exc:
        raise HubError(f"{op}: missing argument {exc}") from None


async def start(hub: Hub, state_dir: Path) -> asyncio.AbstractServer:
    """Serve the control API until the returned server is closed."""
    path = address(state_dir)
    if os.path.exists(path):
        os.unlink(path)  # stale: the state lock (cli) guarantees no other hub owns it

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                writer.write((json.dumps(_reply(hub, line)) + "\n").encode())
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_unix_server(client, path=path, limit=1 << 20)
    os.chmod(path, 0o600)
    return server


def _reply(hub: Hub, line: bytes) -> dict[str, Any]:
    try:
        req = json.loads(line)
        result = execute(hub, str(req.get("op")), dict(req.get("args") or {}))
        return {"ok": True, "result": result}
    except (HubError, ValueError, TypeError) as exc:
        return {"ok": False, "error": str(exc)}


class NoHub(ConnectionError):
    """No hub answers on this state directory's control socket."""


def call(state_dir: Path, op: str, timeout: float = 30.0, **args: Any) -> Any:
    """One request to a running hub; HubError for a refused one, NoHub if none runs."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(address(state_dir))
    except OSError as exc:
        sock.close()
        raise NoHub(f"no hub serving {state_dir}: {exc.strerror or exc}") from None
    with sock, sock.makefile("rwb") as fh:
        fh.write((json.dumps({"op": op, "args": args}) + "\n").encode())
        fh.flush()
        line = fh.readline()
    if not line:
        raise NoHub(f"the hub serving {state_dir} closed the connection")
    reply = json.loads(line)
    if not reply.get("ok"):
        raise HubError(reply.get("error", "refused"))
    return reply["result"]
