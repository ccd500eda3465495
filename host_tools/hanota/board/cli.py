"""`hanota board list|info|provision|flash|deploy|monitor`: thin commands over defs, actions
(provision/flash/deploy) and monitor. Heavy imports stay inside the commands."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..output import CommandError, emit_json, log, parse_int
from .options import FlashOptions, IdentityOptions, ProvisionOptions

if TYPE_CHECKING:
    from .monitor import MapSource

_BOARD_HELP = "board definition name (boards/<name>.json; see 'hanota board list')"
_JSON_HELP = "one JSON document on stdout"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "board", help="board definitions, provisioning, flash, deploy, monitor"
    )
    p.set_defaults(area_parser=p)
    sub = p.add_subparsers(dest="board_cmd", metavar="COMMAND")

    s = sub.add_parser("list", help="the board definitions in boards/")
    s.add_argument("--json", action="store_true", help=_JSON_HELP)
    s.set_defaults(func=cmd_list)

    s = sub.add_parser("info", help="one board definition")
    s.add_argument("name", help=_BOARD_HELP)
    s.add_argument("--json", action="store_true", help=_JSON_HELP)
    s.set_defaults(func=cmd_info)

    s = sub.add_parser("provision", help="give a board its identity and trust anchors")
    s.add_argument("--board", required=True, help=_BOARD_HELP)
    target = s.add_mutually_exclusive_group(required=True)
    target.add_argument("--store-dir", help="write identity.json/trust.json into this directory")
    target.add_argument("--port", help="a board's console: mpremote fs cp to :/data/")
    target.add_argument("--sim", help="a sim board directory: start it, copy, stop it")
    _identity_args(s)
    s.add_argument("--json", action="store_true", help=_JSON_HELP)
    s.add_argument("--dry-run", action="store_true", help="print the commands, change nothing")
    s.set_defaults(func=cmd_provision)

    s = sub.add_parser("flash", help="write MicroPython (esptool), deploy and provision")
    s.add_argument("--board", required=True, help=_BOARD_HELP)
    s.add_argument("--port", help="serial port of a real board")
    s.add_argument("--firmware", help="merged MicroPython firmware .bin for a real board")
    s.add_argument("--baud", type=int, default=460800,
                   help="esptool's baud for writing the firmware (default 460800)")  # fmt: skip
    s.add_argument("--sim-dir", help="sim boards: the board directory (default build/sim/<board>)")
    _identity_args(s)
    s.add_argument("--json", action="store_true", help=_JSON_HELP)
    s.add_argument("--dry-run", action="store_true", help="print the esptool/mpremote lines only")
    s.set_defaults(func=cmd_flash)

    s = sub.add_parser("deploy", help="copy the agent (firmware/) and board.json with mpremote")
    s.add_argument("--board", required=True, help=_BOARD_HELP)
    s.add_argument(
        "--port", help="serial port or console pty (default for sim boards: build/sim/<board>)"
    )
    s.add_argument("--sim-dir", help="sim boards: the board directory (default build/sim/<board>)")
    s.add_argument("--json", action="store_true", help=_JSON_HELP)
    s.add_argument("--dry-run", action="store_true", help="print the mpremote lines only")
    s.set_defaults(func=cmd_deploy)

    s = sub.add_parser("monitor", help="show a board's console (Ctrl-] quits)")
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--port", help="serial port or console pty")
    g.add_argument("--board", help="a sim board: run build/sim/<board> and show its console")
    s.add_argument("--baud", type=int, default=115200,
                   help="the console's baud (default 115200; a pty ignores it)")  # fmt: skip
    names = s.add_mutually_exclusive_group()
    names.add_argument("--namemap", type=Path, metavar="MAP.json",
                       help="read short names back with this device build's map "
                       "(build/namemap/<digest>.json; default: the sim's running app's "
                       "map, else this checkout's firmware's)")  # fmt: skip
    names.add_argument("--raw", action="store_true",
                       help="show short names as the board prints them")  # fmt: skip
    s.set_defaults(func=cmd_monitor)


def _identity_args(s: argparse.ArgumentParser) -> None:
    s.add_argument("--eui64", help="16 hex digits (default: generated)")
    s.add_argument("--seed", help="derive EUI-64 and device key from this (tests, sims only)")
    s.add_argument("--short-addr", type=parse_int, default=0x0001,
                   help="the device's ZigBee short address (default 0x0001)")  # fmt: skip
    s.add_argument("--ch-addr", type=parse_int, default=0x0000, help="bound Comms Hub")
    s.add_argument("--supplier", action="append", help="supplier id served (repeat)")
    s.add_argument("--trust", action="append", help="manufacturer public key PEM (repeat)")
    s.add_argument("--authority", action="append", metavar="PUB.pem",
                   help="rotation-authority public key: signs key-rotation images (repeat)")  # fmt: skip
    s.add_argument("--record", help="device record output (default build/devices/<eui64>.json)")
    s.add_argument("--heap-report", action="store_true",
                   help="agent_config.json with heap_report on: the agent prints its heap "
                   "(the rig's peak_heap reads it from the console)")  # fmt: skip


def cmd_list(args: argparse.Namespace) -> int:
    from . import defs

    boards = [defs.load(n) for n in defs.names()]
    if args.json:
        keys = (
            "name",
            "kind",
            "chip",
            "console",
            "manufacturer_code",
            "image_type",
            "hw_version",
            "description",
        )
        emit_json([{k: b[k] for k in keys} for b in boards])
        return 0
    for b in boards:
        print(
            f"{b['name']:<20} {b['kind']:<6} {b['chip']:<8} console {b['console']:<3}  {b['description']}"
        )
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from . import defs

    b = defs.load(args.name)
    if args.json:
        emit_json(b)
        return 0
    print(f"{b['name']}: {b['description']}")
    print(
        f"  kind {b['kind']}, chip {b['chip']}, flash {b['flash_size'] // 1024} KB, console {b['console']}"
    )
    print(f"  manufacturer_code {b['manufacturer_code']:#06x}, image_type {b['image_type']:#06x}, "
          f"hw_version {b['hw_version']:#06x}")  # fmt: skip
    u = b["han_uart"]
    print(f"  HAN UART {u['id']}: tx {u['tx']}, rx {u['rx']}, {u['baud']} baud")
    mp = b["micropython"]
    csv = f", table {mp['partitions_csv']}" if "partitions_csv" in mp else ""
    print(f"  MicroPython: {mp.get('firmware')} {mp.get('version', '')}{csv}")
    for p in b["partitions"]:
        label = f" (label {p['label']})" if "label" in p else ""
        if p.get("table", True) is False:
            label += " (not in the table: MicroPython registers it at boot)"
        print(
            f"  {p['name']:<9} {p['type']:<4} {p['subtype']:<6} {p['offset']:#09x} {p['size']:#09x}{label}"
        )
    return 0


def identity_options(args: argparse.Namespace) -> IdentityOptions:
    return IdentityOptions(
        eui64=args.eui64, seed=args.seed, short_addr=args.short_addr, ch_addr=args.ch_addr,
        suppliers=tuple(args.supplier or ()), trust=tuple(Path(p) for p in args.trust or ()),
        authority=tuple(Path(p) for p in args.authority or ()),
        record=Path(args.record) if args.record else None, heap_report=args.heap_report,
    )  # fmt: skip


def provision_options(args: argparse.Namespace) -> ProvisionOptions:
    return ProvisionOptions(
        identity=identity_options(args), store_dir=_path(args.store_dir), port=args.port,
        sim=_path(args.sim), dry_run=args.dry_run,
    )  # fmt: skip


def flash_options(args: argparse.Namespace) -> FlashOptions:
    return FlashOptions(
        identity=identity_options(args), port=args.port, firmware=_path(args.firmware),
        baud=args.baud, sim_dir=_path(args.sim_dir), dry_run=args.dry_run,
    )  # fmt: skip


def _path(arg: str | None) -> Path | None:
    return Path(arg) if arg else None


def cmd_provision(args: argparse.Namespace) -> int:
    from . import actions, defs

    summary = actions.provision_to(defs.load(args.board), provision_options(args))
    _report(args, summary)
    return 0


def cmd_flash(args: argparse.Namespace) -> int:
    from . import actions, defs

    board = defs.load(args.board)
    opts = flash_options(args)
    if board["kind"] == "sim":
        if opts.port or opts.firmware:
            raise CommandError(f"{board['name']} is a simulated board: no --port/--firmware")
        summary = actions.flash_sim(board, opts)
    else:
        summary = actions.flash_real(board, opts)
    _report(args, summary)
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    from . import actions, defs

    summary = actions.deploy_to(defs.load(args.board), args.port, args.dry_run, args.sim_dir)
    _report(args, summary)
    return 0


def cmd_monitor(args: argparse.Namespace) -> int:
    from . import defs, monitor, simboard

    if args.port:
        return monitor.run(args.port, args.baud, _names(args, None))
    board = defs.load(args.board)
    if board["kind"] != "sim":
        raise CommandError(f"monitor for the real board {board['name']!r} needs PORT=<serial port>")
    directory = simboard.sim_dir(board)
    with simboard.running(directory) as sb:
        return monitor.run(sb.console_path, args.baud, _names(args, directory))


def _names(args: argparse.Namespace, sim: Path | None) -> MapSource | None:
    """Where `board monitor` takes its name map from (None: --raw)."""
    from . import monitor, simboard

    if args.raw:
        return None
    if args.namemap:
        return monitor.map_file(args.namemap)
    return monitor.checkout_map(simboard.slot_files(sim) if sim else None)


def _report(args: argparse.Namespace, summary: dict[str, Any]) -> None:
    if getattr(args, "json", False):
        emit_json(summary)
    elif not summary.get("dry_run"):
        log("done: " + ", ".join(f"{k} {v}" for k, v in summary.items() if k in _SHOWN))


_SHOWN = ("eui64", "key_id", "record", "target", "sim_dir", "deploy_s", "provision_s", "total_s")
