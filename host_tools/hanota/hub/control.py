"""Local control API: JSON lines over a Unix socket beside the hub's state, so that
`hanota hub enrol|submit|discard|...` reach a running `hanota hub serve`.

One request per line {"op": ..., "token": ..., "args": {...}}, one reply per line
{"ok": true, "result": ...} or {"ok": false, "error": "..."}. The token names the
principal (credentials.py): the operator, or one supplier, who acts only as itself.
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

from . import credentials as cr
from .core import Hub, HubError

_MAX_SUN_PATH = 100


def address(state_dir: Path) -> str:
    """STATE/control.sock, or a short path in /tmp when that is too long for AF_UNIX."""
    path = str(Path(state_dir).resolve() / "control.sock")
    if len(path) <= _MAX_SUN_PATH:
        return path
    tag = hashlib.sha256(path.encode()).hexdigest()[:12]
    return os.path.join(tempfile.gettempdir(), f"hanota-hub-{tag}.sock")


# who may run each operation: "operator", "supplier" (as itself), or both (ping: anyone)
_ALLOWED = {
    "ping": (),
    "whoami": ("operator", "supplier"),
    "enrol": ("operator",),
    "trust": ("operator",),
    "meter": ("operator",),
    "credentials": ("operator",),
    "submit": ("supplier",),
    "discard": ("supplier",),
    "activate": ("supplier",),
    "inventory": ("operator", "supplier"),
    "alerts": ("operator", "supplier"),
}


def principal(hub: Hub, token: str | None) -> str:
    """The principal holding `token`; HubError when none does."""
    who = hub.credentials.who(token, hub.state.principals)
    if who is None:
        raise HubError("not authenticated: give the token file the hub operator issued you "
                       "(--token-file; the hub keeps them in STATE/credentials/)")  # fmt: skip
    return who


def execute(hub: Hub, op: str, args: dict[str, Any], token: str | None) -> Any:
    """Run one control operation on a hub (served or opened offline) for the principal
    holding `token`: a supplier acts as itself only, on its own submissions."""
    if op not in _ALLOWED:
        raise HubError(f"unknown control operation {op!r} (known: {', '.join(_ALLOWED)})")
    if op == "ping":  # is a hub there: says nothing of its state
        return {"pong": True}
    who = principal(hub, token)
    me = cr.supplier_of(who)
    if ("supplier" if me is not None else "operator") not in _ALLOWED[op]:
        raise HubError(f"{op}: not allowed for {who}")
    claimed = args.get("supplier")
    if me is not None and claimed not in (None, me):
        raise HubError(f"{op}: this token is {me}'s, not {claimed}'s")
    ops = {
        "whoami": lambda: {"principal": who},
        "enrol": lambda: hub.enrol(args["record"], bool(args.get("replace_key"))),
        "trust": lambda: hub.add_anchor(
            bytes.fromhex(args["public_key"]), bool(args.get("authority"))
        ),
        "credentials": lambda: {
            p: str(hub.credentials.path(p) or "") for p in sorted(hub.state.principals)
        },  # fmt: skip
        "submit": lambda: hub.submit(
            me, args["devices"], args["files"], args.get("activate_at"), bool(args.get("queue"))
        ),  # fmt: skip
        "discard": lambda: hub.discard(me, args.get("submission"), args.get("devices") or None),
        "activate": lambda: hub.activate(args["submission"], args.get("at"), supplier=me),
        "meter": lambda: hub.meter_upgrade(args.get("device"), bool(args.get("on", True))),
        "inventory": lambda: hub.inventory(me),
        "alerts": lambda: hub.alerts(me or claimed, bool(args.get("pending"))),
    }
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
        except asyncio.CancelledError:
            # the hub stopping: a connection's task ends here, not cancelled, since Python
            # 3.11's start_server callback asks a cancelled task for its exception and logs
            # the CancelledError it gets as an error (fixed in 3.12)
            pass
        finally:
            writer.close()

    server = await asyncio.start_unix_server(client, path=path, limit=1 << 20)
    os.chmod(path, 0o600)
    return server


def _reply(hub: Hub, line: bytes) -> dict[str, Any]:
    try:
        req = json.loads(line)
        result = execute(hub, str(req.get("op")), dict(req.get("args") or {}), req.get("token"))
        return {"ok": True, "result": result}
    except (HubError, ValueError, TypeError) as exc:
        return {"ok": False, "error": str(exc)}


class NoHub(ConnectionError):
    """No hub answers on this state directory's control socket."""


def call(
    state_dir: Path, op: str, timeout: float = 30.0, token: str | None = None, **args: Any
) -> Any:
    """One request to a running hub as the holder of `token`; HubError for a refused
    one, NoHub if none runs."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(address(state_dir))
    except OSError as exc:
        sock.close()
        raise NoHub(f"no hub serving {state_dir}: {exc.strerror or exc}") from None
    with sock, sock.makefile("rwb") as fh:
        fh.write((json.dumps({"op": op, "token": token, "args": args}) + "\n").encode())
        fh.flush()
        line = fh.readline()
    if not line:
        raise NoHub(f"the hub serving {state_dir} closed the connection")
    reply = json.loads(line)
    if not reply.get("ok"):
        raise HubError(reply.get("error", "refused"))
    return reply["result"]
