"""`hanota app build`: an app image for a board (the sim app format; ESP32 needs ESP-IDF)."""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

from ..output import CommandError, log, parse_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("app", help="build app images for boards")
    p.set_defaults(area_parser=p)
    s = p.add_subparsers(dest="cmd", metavar="COMMAND")
    b = s.add_parser(
        "build",
        help="build the agent (or --source DIR) into a bootable app",
        description="Build an app tree (default: this checkout's firmware/, modules compiled "
        "to .mpy as a board runs them) into a bootable app image for a sim board. The image "
        "is the firmware payload that `hanota image build` signs into OTA files. ESP32 "
        "boards: see boards/<name>/ (hanota board deploy, or a frozen ESP-IDF build).",
        epilog="example: hanota app build --board sim-ppmid --version 0x01000200 -o app.bin",
    )
    b.add_argument("--board", required=True, help="board name (hanota board list)")
    b.add_argument("--version", required=True, type=parse_int, help="u32 app version")
    b.add_argument(
        "--source", type=Path, help="app tree with main.py at its top (default firmware/)"
    )
    b.add_argument("--pad-to", type=parse_int, help="add a data asset so the app is BYTES long")
    b.add_argument("-o", "--output", required=True, type=Path, help="app image file to write")
    b.set_defaults(func=cmd_build)


def esp_idf_missing() -> list[str]:
    """What an ESP32 app build lacks here (empty when an ESP-IDF toolchain is present)."""
    missing = []
    idf = os.environ.get("IDF_PATH")
    if not idf or not Path(idf, "tools", "idf.py").is_file():
        missing.append("IDF_PATH (an ESP-IDF checkout, v5.x, with tools/idf.py)")
    if not shutil.which("idf.py"):
        missing.append("idf.py on PATH (run '. $IDF_PATH/export.sh')")
    if not shutil.which("xtensa-esp32-elf-gcc") and not shutil.which("xtensa-esp-elf-gcc"):
        missing.append("the Xtensa cross compiler (installed by $IDF_PATH/install.sh)")
    return missing


def cmd_build(args: argparse.Namespace) -> int:
    from ..board import defs
    from . import appimage
    from .create import factory_app

    board = defs.load(args.board)
    if board["kind"] == "esp32":
        return _build_esp32(board, args)
    if args.pad_to is None:
        app = factory_app(board, args.version, args.source)
    else:
        src = args.source or factory_source()
        app = appimage.build(appimage.collect(src), args.version, board, pad_to=args.pad_to)
        appimage.check_fits(app, board)
    args.output.write_bytes(app)
    log(f"app: {args.output} {len(app)} bytes, version {args.version:#010x}, board {board['name']}")
    return 0


def factory_source() -> Path:
    from .. import paths

    if not (paths.FIRMWARE / "main.py").is_file():
        raise CommandError(f"{paths.FIRMWARE}/main.py does not exist yet; pass --source DIR")
    return paths.FIRMWARE


def _build_esp32(board: dict, args: argparse.Namespace) -> int:
    missing = esp_idf_missing()
    name = board["name"]
    if missing:
        raise CommandError(
            f"board {name} is an ESP32 board: its app is MicroPython built with the agent frozen "
            f"in, which needs an ESP-IDF toolchain; missing: {'; '.join(missing)}. "
            f"See boards/{name}/ for the build recipe, or use a sim board (hanota board list)."
        )
    raise CommandError(
        f"ESP-IDF found; build board {name}'s firmware with the recipe in boards/{name}/ "
        "(hanota app build makes sim apps only)"
    )
