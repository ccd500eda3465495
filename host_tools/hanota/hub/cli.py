"""`hanota hub serve|enrol|trust|submit|discard|activate|meter|inventory|alerts|credentials`.

Every command but serve goes to the hub serving --state (control socket) or, when
none runs, opens that state directory itself; either way as the principal whose token
it presents (--token-file, else the state directory's file for --supplier or operator).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..output import CommandError, emit_json, log, parse_int
from ..paths import BUILD

DEFAULT_STATE = BUILD / "hub"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("hub", help="Comms Hub emulator: serve links, submit images, alerts")
    p.set_defaults(area_parser=p)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    s = _cmd(sub, "serve", "serve ZCL OTA on device links until interrupted", cmd_serve)
    s.add_argument("--link", action="append", default=[], metavar="PATH=EUI64",
                   help="one device's link, bound to its EUI-64 (repeatable): a serial port "
                   "or pty path, or a URL: socket://HOST:PORT (raw TCP, e.g. a port "
                   "exported from another host), rfc2217://HOST:PORT")  # fmt: skip
    s.add_argument("--profile", default="direct", help="link profile: block size and baud")
    s.add_argument("--block-size", type=parse_int, help="largest block data (1..254)")
    s.add_argument("--baud", type=parse_int, help="serial baud rate (default from profile)")
    s.add_argument("--min-block-period", type=parse_int, default=0, help="ms")
    s.add_argument("--meter-wait", type=parse_int, default=5, help="WAIT_FOR_DATA seconds")
    s.add_argument("--confirm-delay", type=float, default=5.0, help="version confirmation delay (s)")  # fmt: skip
    s.add_argument("--stagger", type=float, default=0.0, help="spread alerts over 0..S seconds")
    s.add_argument("--stall-timeout", type=float, default=120.0,
                   help="transfer-failure alert after S s without a request mid-transfer (0 off)")  # fmt: skip
    s.add_argument("--quiet", action="store_true", help="no progress view")
    s.add_argument("--trust", action="append", default=[], type=Path, metavar="PUB.pem",
                   help="manufacturer public key submissions are verified against (repeatable)")  # fmt: skip
    s.add_argument("--authority", action="append", default=[], type=Path, metavar="PUB.pem",
                   help="rotation-authority key 0xFFC0 submissions are verified against (repeatable)")  # fmt: skip
    s.add_argument("--turn", type=float, default=86400.0,
                   help="R2: a submission holds a device this long at most while another "
                   "supplier is queued for it (s, 0 off)")  # fmt: skip
    s = _cmd(sub, "enrol", "enrol devices from provisioning records (operator)", cmd_enrol)
    s.add_argument("records", nargs="+", type=Path, metavar="RECORD.json",
                   help="device records written by 'hanota board provision|flash'")  # fmt: skip
    s.add_argument("--replace-key", action="store_true",
                   help="allow a new public key for a device already enrolled (re-provisioned)")  # fmt: skip
    s = _cmd(sub, "trust", "trust a manufacturer public key for submissions (operator)",
             cmd_trust)  # fmt: skip
    s.add_argument("keys", nargs="+", type=Path, metavar="PUB.pem",
                   help="manufacturer public keys (PEM)")  # fmt: skip
    s.add_argument("--authority", action="store_true",
                   help="as a rotation authority: the only keys key-rotation (0xFFC0) "
                   "submissions are verified against, never image-signing anchors")  # fmt: skip
    s = _cmd(sub, "submit", "submit an image or a set of fragments (SR 11.4)", cmd_submit)
    s.add_argument("--supplier", help="who you are (must be your token's supplier)")
    s.add_argument("--device", required=True, action="append", nargs="+", metavar="EUI64",
                   help="devices to update (16 hex digits; repeatable; files may follow)")  # fmt: skip
    s.add_argument("--activate-at", help="now (default), hold, +SECONDS, ISO time, ZigBee secs")
    s.add_argument("--queue", action="store_true",
                   help="R2: wait behind another supplier's image rather than be refused")  # fmt: skip
    s.add_argument("files", nargs="*", type=Path, metavar="FILE",
                   help="OTA files: one image, all its fragments, and any deltas")  # fmt: skip
    s = _cmd(sub, "discard", "discard your image before or during transfer", cmd_discard)
    s.add_argument("--supplier", help="who you are (must be your token's supplier)")
    s.add_argument("--submission", help="the submission id to discard (default: any of yours)")
    s.add_argument("--device", action="append", nargs="+", metavar="EUI64",
                   help="only on these devices (repeatable; default: every device)")  # fmt: skip
    s = _cmd(sub, "activate", "give your held submission its activation time", cmd_activate)
    s.add_argument("submission", help="the held submission's id (from 'hanota hub submit')")
    s.add_argument("--supplier", help="who you are (must be your token's supplier)")
    s.add_argument("--at", help="now (default), +SECONDS, ISO time or ZigBee seconds")
    s = _cmd(sub, "meter", "R5: a meter upgrade is running (on) or done (off) (operator)",
             cmd_meter)  # fmt: skip
    s.add_argument("switch", choices=("on", "off"),
                   help="on: a meter upgrade runs (block requests get WAIT_FOR_DATA); off: done")  # fmt: skip
    s.add_argument("--device", help="only this device (default: all)")
    s = _cmd(sub, "inventory", "devices, versions, transfers, history", cmd_inventory)
    s.add_argument("--supplier", help="as this supplier: the devices it serves")
    s = _cmd(sub, "alerts", "supplier alerts raised so far", cmd_alerts)
    s.add_argument("--supplier", help="a supplier: its own alerts; the operator: a filter")
    s.add_argument("--pending", action="store_true", help="scheduled, not yet due")
    _cmd(sub, "credentials", "principals and their token files (operator)", cmd_credentials)


def _cmd(sub: Any, name: str, help_: str, func: Any) -> argparse.ArgumentParser:
    s = sub.add_parser(name, help=help_)
    s.add_argument("--state", type=Path, default=DEFAULT_STATE, help="hub state directory")
    s.add_argument("--json", action="store_true", help="one JSON document on stdout")
    if name != "serve":
        s.add_argument("--token-file", type=Path, metavar="FILE",
                       help="your control API token (default: $HANOTA_HUB_TOKEN_FILE, else "
                       "STATE/credentials/ for --supplier, or the operator's)")  # fmt: skip
    s.set_defaults(func=func)
    return s


def token_finder(args: argparse.Namespace) -> Callable[[], str | None]:
    """How to find the caller's token: --token-file, $HANOTA_HUB_TOKEN_FILE, or the
    state directory's file for --supplier (else the operator's), which only its owner
    can read (0600). Called late: an offline hub makes the operator's on first open."""
    from . import credentials as cr

    def find() -> str | None:
        path = args.token_file or os.environ.get("HANOTA_HUB_TOKEN_FILE")
        if path is None:
            sup = getattr(args, "supplier", None)
            who = cr.supplier(sup) if sup else cr.OPERATOR
            path = Path(args.state) / "credentials" / cr.file_name(who)
            if not Path(path).exists():
                return None
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise CommandError(f"token file {path}: {exc.strerror}") from None

    return find


def request(state: Path, op: str, token: Callable[[], str | None], **args: Any) -> Any:
    """Ask the hub serving `state`; without one, open the state directory here."""
    from . import control
    from .core import Hub, HubError
    from .service import locked

    try:
        try:
            return control.call(state, op, token=token(), **args)
        except control.NoHub:
            with locked(state):
                hub = Hub(state_dir=state)
                try:
                    return control.execute(hub, op, args, token())
                finally:
                    hub.close()
    except HubError as exc:
        raise CommandError(str(exc)) from None


def _flat(groups: list[list[str]] | None) -> list[str]:
    return [d.lower() for g in groups or [] for d in g]


def cmd_serve(args: argparse.Namespace) -> int:
    from .service import serve_command

    return serve_command(args)


def cmd_enrol(args: argparse.Namespace) -> int:
    import json

    try:
        docs = [json.loads(p.read_text()) for p in args.records]
    except (OSError, ValueError) as exc:
        raise CommandError(f"cannot read device record: {exc}") from None
    out = [request(args.state, "enrol", token_finder(args), record=d,
                   replace_key=args.replace_key) for d in docs]  # fmt: skip
    return _show(
        args,
        out,
        lambda rs: "\n".join(
            f"enrolled {r['eui64']} ({r['board']}, suppliers {', '.join(r['suppliers'])})"
            for r in rs
        ),
    )


def cmd_trust(args: argparse.Namespace) -> int:
    from hanota.image import keys

    raws = [keys.raw_public(keys.load_public(p)).hex() for p in args.keys]
    out = [request(args.state, "trust", token_finder(args), public_key=r,
                   authority=args.authority) for r in raws]  # fmt: skip
    return _show(args, out, lambda rs: "\n".join(f"trusted key {r['key_id']} ({r['role']})"
                                                 for r in rs))  # fmt: skip


def cmd_credentials(args: argparse.Namespace) -> int:
    res = request(args.state, "credentials", token_finder(args))
    return _show(args, res, lambda r: "\n".join(f"{p}: {f}" for p, f in r.items()))


def _split_devices(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """`--device A B FILE...`: EUI-64s (16 hex digits, not a file) first, then files."""
    devices, files = [], [str(f) for f in args.files]
    for item in _flat(args.device):
        is_eui = len(item) == 16 and all(c in "0123456789abcdef" for c in item)
        (devices if is_eui and not Path(item).exists() else files).append(item)
    if not files:
        raise CommandError("no image FILE given")
    return devices, [str(Path(f).resolve()) for f in files]


def cmd_submit(args: argparse.Namespace) -> int:
    devices, files = _split_devices(args)
    res = request(args.state, "submit", token_finder(args), supplier=args.supplier,
                  devices=devices, files=files, activate_at=args.activate_at,
                  queue=args.queue)  # fmt: skip
    for eui, why in res["refused"].items():
        log(f"hanota: refused for {eui}: {why}")
    queued = f", queued for {', '.join(res['queued'])}" if res.get("queued") else ""
    return _show(args, res, lambda r: f"submission {r['id']}: version 0x{r['version']:08x}, "
                 f"{r['fragments']} file(s){_deltas(r)}, devices {', '.join(r['accepted'])}"
                 f"{queued}")  # fmt: skip


def _deltas(r: dict) -> str:
    """ ", deltas from 0x01000000 (590 B)": what a device running a base version is sent."""
    ds = r.get("deltas") or []
    return ", deltas from " + ", ".join(f"0x{d['base_version']:08x} ({d['bytes']} B)"
                                        for d in ds) if ds else ""  # fmt: skip


def cmd_discard(args: argparse.Namespace) -> int:
    res = request(args.state, "discard", token_finder(args), supplier=args.supplier,
                  submission=args.submission, devices=_flat(args.device))  # fmt: skip
    return _show(args, res, lambda r: "discarded " + ", ".join(
        f"{d['submission']} on {d['device']}" for d in r["discarded"]))  # fmt: skip


def cmd_activate(args: argparse.Namespace) -> int:
    res = request(args.state, "activate", token_finder(args), supplier=args.supplier,
                  submission=args.submission, at=args.at)  # fmt: skip
    return _show(args, res, lambda r: f"{r['submission']}: upgrade time {r['upgrade_time']} "
                 f"for {', '.join(r['devices']) or 'no device waiting'}")  # fmt: skip


def cmd_meter(args: argparse.Namespace) -> int:
    res = request(args.state, "meter", token_finder(args), device=args.device,
                  on=args.switch == "on")  # fmt: skip
    return _show(args, res, lambda r: f"meter upgrade: all={r['meter_all']} devices={r['devices']}")


def cmd_inventory(args: argparse.Namespace) -> int:
    from .view import inventory_lines

    res = request(args.state, "inventory", token_finder(args), supplier=args.supplier)
    return _show(args, res, lambda r: "\n".join(inventory_lines(r)))


def cmd_alerts(args: argparse.Namespace) -> int:
    from .view import format_alert

    res = request(args.state, "alerts", token_finder(args), supplier=args.supplier,
                  pending=args.pending)  # fmt: skip
    return _show(args, res, lambda r: "\n".join(f"{a['at'] or a['due']} {format_alert(a)}"
                                                 for a in r) or "no alerts")  # fmt: skip


def _show(args: argparse.Namespace, result: Any, text: Any) -> int:
    if args.json:
        emit_json(result)
    else:
        print(text(result))
    return 0
