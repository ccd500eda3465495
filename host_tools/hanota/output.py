"""Output conventions shared by every command.

`--json` prints exactly one JSON document on stdout; progress and logs go to stderr.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def emit_json(doc: Any) -> None:
    """Print one JSON document on stdout (integers stay JSON numbers)."""
    sys.stdout.write(json.dumps(doc, indent=2, sort_keys=False) + "\n")
    sys.stdout.flush()


JSON_MODE = False  # set by the `hanota` entry point when the command was given --json


def plan(line: str) -> None:
    """A --dry-run command line: on stdout, or on stderr under --json (whose stdout holds
    exactly one JSON document)."""
    out = sys.stderr if JSON_MODE else sys.stdout
    out.write(line + "\n")
    out.flush()


def log(msg: str) -> None:
    """A human-readable line on stderr."""
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


class CommandError(Exception):
    """A user-facing failure: printed as one line on stderr, exit status `code`."""

    def __init__(self, msg: str, code: int = 2):
        super().__init__(msg)
        self.code = code


def parse_int(text: str) -> int:
    """Parse 0x-prefixed hex or decimal; used as an argparse `type`."""
    try:
        return int(str(text).replace("_", ""), 0)
    except ValueError:
        import argparse

        msg = f"not an integer: {text!r} (use decimal or 0x hex)"
        raise argparse.ArgumentTypeError(msg) from None
