"""The `hanota` command: a table of areas, each registering its own sub-commands.

Each area module exposes `register(subparsers)`; it adds one parser whose
sub-commands set `func(args) -> int`. Heavy imports stay inside the functions.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys

from . import __version__
from .output import CommandError

# area name -> module that registers it (order = order in --help)
AREAS = {
    "image": "hanota.image.cli",
    "board": "hanota.board.cli",
    "app": "hanota.sim.app_cli",
    "sim": "hanota.sim.cli",
    "hub": "hanota.hub.cli",
    "rig": "hanota.rig.cli",
    "bench": "hanota.bench.cli",
    "lab": "hanota.lab.cli",
    "demo": "hanota.demo",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hanota",
        description="Reference OTA agent for GB smart-metering IHD/PPMID boards: "
        "image tool, simulated boards, Comms Hub emulator and test rig.",
    )
    parser.add_argument("--version", action="version", version=f"hanota {__version__}")
    sub = parser.add_subparsers(dest="area", metavar="AREA")
    for modname in AREAS.values():
        try:
            mod = importlib.import_module(modname)
        except ModuleNotFoundError as exc:
            if exc.name and modname.startswith(exc.name):
                continue  # area not built in this checkout
            raise
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    # commands that run until SIGINT (hub serve, sim run, lab) must stop on it even when
    # started from a shell that ignores it for background jobs (Python keeps SIG_IGN)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        # an area without a sub-command: show that area's help
        target = getattr(args, "area_parser", parser)
        target.print_help(sys.stderr)
        return 2
    from . import output

    output.JSON_MODE = bool(getattr(args, "json", False))
    try:
        return int(func(args) or 0)
    except CommandError as exc:
        sys.stderr.write(f"hanota: error: {exc}\n")
        return exc.code
    except KeyboardInterrupt:
        sys.stderr.write("hanota: interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
