"""The OTA agent's portable core (docs/agent.md). `let_go` unloads a module used rarely;
`record` makes the message records of the codecs."""

import sys

# Names defined here live in the package's dict, which also holds every loaded submodule:
# one more would grow that table past its size class, heap the 64k delta update lacks, so
# small helpers (the CPython ticks_diff fallback) stay in the modules that use them.


class Error(ValueError):
    """An error of the agent's store and link and of the board ports: `.code` is a fixed
    name, the text may say more. One class under several names (kvstore.StoreError,
    link.LinkError, ports.slot.PortError): each class is heap (docs/agent.md, Memory)."""

    def __init__(self, code, detail=""):
        super().__init__(code + ": " + detail if detail else code)
        self.code = code


def let_go(name):
    """MicroPython: drop otaclient.<name> after a rare use (boot, a fragment's end), so its
    functions and buffers go back to the heap between uses; the next import loads it from
    the modules in flash again. CPython keeps it (host tests patch modules in place)."""
    if sys.implementation.name == "micropython":
        sys.modules.pop("otaclient." + name, None)
        globals().pop(name, None)


# Message records (zcl_client, imagefmt) are namedtuples on the host and plain tuples on a
# MicroPython board, where each namedtuple type is heap held for good (docs/agent.md,
# Memory). So device code reads records by unpacking or by index, never by
# field name. A test that needs typed records under MicroPython (zcl.encode_command
# dispatches on the type) sets TYPED = True before the codecs are imported.
TYPED = sys.implementation.name != "micropython"


def record(name, fields):
    """namedtuple(name, fields) when TYPED, else a function making a plain tuple."""
    if TYPED:
        from collections import namedtuple

        return namedtuple(name, fields)
    return _plain


def _plain(*fields):
    return fields
