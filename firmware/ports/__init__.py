"""Board ports: make_port() builds the port the board definition names ("port": "esp32" ->
ports/esp32.py, "unix" -> ports/unix.py); the contract is ports/contract.py. No port code here.

The board definition is /board.json on a device (hanota board deploy puts it there) and the
"board" of run/boot.json on a sim board (HANOTA_BOOT, written by the sim runner).
"""

import sys


def load_board():
    """(board, boot): the board definition, and the sim's whole boot document or None."""
    import json  # used once: not kept among the package's names
    import os

    getenv = getattr(os, "getenv", None)  # the esp32 port's os has no getenv
    path = getenv("HANOTA_BOOT") if getenv else None
    if path:
        with open(path) as f:
            boot = json.load(f)
        return boot["board"], boot
    with open("/board.json") as f:
        return json.load(f), None


def make_port():
    board, boot = load_board()
    name = board.get("port")
    if not name:
        raise ValueError("the board definition names no port")
    mod = __import__("ports." + name, None, None, ("Port",))
    return mod.Port(board, boot) if boot is not None else mod.Port(board)


def let_go(name):
    """MicroPython: drop ports.<name> after a rare use (the unix port runs the otadata rules
    once, in its constructor), so its functions go back to the heap the agent needs while
    it fetches; a later import loads it from flash again. CPython keeps it (tests patch
    modules)."""
    if sys.implementation.name == "micropython":
        sys.modules.pop("ports." + name, None)
        globals().pop(name, None)
