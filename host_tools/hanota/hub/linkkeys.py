"""The CH link keys of enrolled devices (docs/link-protocol.md 1.1), kept as
STATE/credentials/link-<eui64>.key (0600) beside the control tokens, in memory without a state dir.

Stores and returns keys; sealing is otaclient.link's, when to seal server.py's. A key never
enters the event log: the enrolment records its id (link_key_id) only.
"""

from __future__ import annotations

from pathlib import Path

from otaclient import imagefmt

from .credentials import write_secret

KEY_LEN = 16


def key_id(key: bytes) -> str:
    """What the event log and the inventory show of a link key: its key id (the formula
    of signing keys' ids, otaclient.imagefmt.key_id), as 8 hex digits."""
    return f"{imagefmt.key_id(key):08x}"


class LinkKeys:
    """Link keys by device EUI-64 (16 hex digits)."""

    def __init__(self, root: Path | None):
        self.root = root
        self._keys: dict[str, bytes] = {}

    def _path(self, eui: str) -> Path | None:
        return self.root / f"link-{eui}.key" if self.root is not None else None

    def get(self, eui: str) -> bytes | None:
        """The device's link key, None if it was enrolled without one (or it is unreadable:
        the hub then sends unsealed frames, which a keyed device refuses)."""
        p = self._path(eui)
        if eui not in self._keys and p is not None:
            try:
                key = bytes.fromhex(p.read_text().strip())
            except (OSError, ValueError):
                return None
            if len(key) == KEY_LEN:
                self._keys[eui] = key
        return self._keys.get(eui)

    def put(self, eui: str, key: bytes) -> None:
        p = self._path(eui)
        if p is not None:
            write_secret(p, key.hex())
        self._keys[eui] = key
