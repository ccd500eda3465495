"""An in-memory port for the reassembly target, stricter than flash.

Only what `otaclient.reassembly` touches: the update slot and the store. Any access
outside the slot, a write onto unerased bytes, or an erase of a sector that holds a
fragment already recorded as done raises InvariantError (a finding, never caught).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


class InvariantError(AssertionError):
    """A fuzz invariant broke: the targets never catch it."""


class MemStore:
    """port.store: atomic puts into a dict."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def get(self, name: str) -> bytes | None:
        return self.files.get(name)

    def put(self, name: str, data: bytes) -> None:
        self.files[name] = bytes(data)

    def put_json(self, name: str, obj: Any) -> None:
        self.files[name] = json.dumps(obj).encode()

    def delete(self, name: str) -> None:
        self.files.pop(name, None)


class MemPort:
    """Update slot of `sectors` x `block_size` bytes, erased to 0xFF."""

    def __init__(self, sectors: int = 6, block_size: int = 4096) -> None:
        self.block_size = block_size
        self.slot_size = sectors * block_size
        self.flash = bytearray(b"\xff" * self.slot_size)
        self.store = MemStore()
        self.done_ranges: Callable[[], list[tuple[int, int]]] = list
        self.ops = 0

    def _range(self, what: str, off: int, n: int) -> None:
        if off < 0 or n < 0 or off + n > self.slot_size:
            raise InvariantError(f"{what} outside the update slot: offset {off}, {n} bytes")

    def erase(self, block: int) -> None:
        bs = self.block_size
        self._range("erase", block * bs, bs)
        for start, n in self.done_ranges():
            if start < (block + 1) * bs and block * bs < start + n:
                raise InvariantError(f"erase of sector {block} holding done bytes {start}+{n}")
        self.flash[block * bs : (block + 1) * bs] = b"\xff" * bs
        self.ops += 1

    def write(self, offset: int, buf: bytes | memoryview) -> None:
        n = len(buf)
        self._range("write", offset, n)
        if self.flash[offset : offset + n].count(0xFF) != n:
            raise InvariantError(f"write onto unerased bytes at {offset} ({n} bytes)")
        self.flash[offset : offset + n] = buf
        self.ops += 1

    def read(self, offset: int, buf: bytearray | memoryview) -> None:
        self._range("read", offset, len(buf))
        buf[:] = self.flash[offset : offset + len(buf)]

    def check_app(self, length: int) -> None:
        self._range("check_app", 0, length)

    def log(self, msg: str) -> None:
        pass
