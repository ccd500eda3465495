"""The OTA agent's portable core (docs/agent.md). `let_go` unloads a module used rarely."""

import sys


def let_go(name):
    """MicroPython: drop otaclient.<name> after a rare use (boot, a fragment's end), so its
    functions and buffers go back to the heap between uses; the next import loads it from
    the modules in flash again. CPython keeps it (host tests patch modules in place)."""
    if sys.implementation.name == "micropython":
        sys.modules.pop("otaclient." + name, None)
        globals().pop(name, None)
