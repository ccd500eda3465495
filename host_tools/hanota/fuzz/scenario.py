"""The reassembly target: fuzzer bytes as a script of fragment deliveries to one board.

Each delivery is wired as the client wires it (client.py): Verifier(check=begin,
sink=Reassembly.sink), finish() then Reassembly.finish(); an ImageError or PolicyError
aborts the fragment. After every step the invariants are checked:
- nothing but ImageError / PolicyError escapes (the port raises InvariantError on
  access outside the slot, writes onto unerased bytes, erasing a done fragment);
- every fragment recorded as done is one the fixture key really signed, its bytes are
  in the slot, and the persisted progress equals the in-memory one;
- a file that is refused, truncated or skipped leaves the done fragments as they were,
  and so does a proof pass (a newer firmware's fragment over staged ones, verified
  without writing; the client then fetches it again, here: delivered again);
- complete() means the done fragments tile the firmware and verify_slot() passes.
"""

from __future__ import annotations

import hashlib
import random
from binascii import hexlify

from otaclient import image
from otaclient.policy import PolicyError
from otaclient.reassembly import Reassembly
from otaclient.state import PROGRESS, load_json

from hanota.fuzz import fixtures
from hanota.fuzz.chunking import chunks
from hanota.fuzz.fakeport import InvariantError, MemPort

MAX_OPS = 10


GOOD, MUTATE, TRUNCATE, REBOOT, RAW, CANCEL = range(6)


class _Staged(Exception):
    """begin() said the fragment is already staged (the client skips the file)."""


class _Script:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.i = 0

    def more(self) -> bool:
        return self.i < len(self.data)

    def byte(self) -> int:
        self.i += 1
        return self.data[self.i - 1] if self.i <= len(self.data) else 0

    def u16(self) -> int:
        return self.byte() | self.byte() << 8

    def take(self, n: int) -> bytes:
        out = self.data[self.i : self.i + n]
        self.i += n
        return out


class Board:
    """One port, its reassembly, and the fixture truth to check them against."""

    def __init__(self) -> None:
        self.port = MemPort()
        self.port.done_ranges = self._done_ranges
        self.reasm = Reassembly(self.port, bytearray(self.port.block_size))

    def _done_ranges(self) -> list[tuple[int, int]]:
        p = self.reasm.progress
        return [(s, n) for _i, s, n in p["done"]] if p else []

    def reboot(self) -> None:
        self.reasm = Reassembly(self.port, bytearray(self.port.block_size))

    def deliver(self, data: bytes, seed: int, cut: int | None = None, abort: bool = True) -> None:
        reasm = self.reasm

        def check(_header: image.Header, m: image.Manifest) -> None:
            if not reasm.begin(m):
                raise _Staged()

        ver = image.Verifier(fixtures.lookup_key, reasm.sink, check)
        before = self._done()
        try:
            for chunk in chunks(data[:cut], random.Random(seed)):
                ver.feed(chunk)
            if cut is not None:  # transfer abandoned (abort) or power lost (reboot)
                reasm.abort() if abort else self.reboot()
                return self._unchanged(before, "a truncated file")
            m = ver.finish()
            complete = reasm.finish(m)
            if complete is None:  # a proof pass verified it: the client fetches it again
                self._unchanged(before, "a proof pass")
                return self.deliver(data, seed)  # cut is None here: a whole delivery
        except _Staged:
            return self._unchanged(before, "a staged fragment")
        except (image.ImageError, PolicyError) as e:
            reasm.abort()
            return self._unchanged(before, f"a refused file ({e.code})")
        if complete:
            self._check_complete()

    def _done(self) -> list:
        p = self.reasm.progress
        return list(p["done"]) if p else []

    def _unchanged(self, before: list, what: str) -> None:
        # bad input changes nothing persistent (QUALITY.md): staged progress survives it
        if self._done() != before:
            raise InvariantError(f"{what} changed staged progress: {before} -> {self._done()}")

    def _check_complete(self) -> None:
        p = self.reasm.progress
        spans = sorted((s, n) for _i, s, n in p["done"])
        at = 0
        for s, n in spans:
            if s != at:
                raise InvariantError(f"complete() with a gap at {at}: done {spans}")
            at = s + n
        if at != p["total"]:
            raise InvariantError(f"complete() but done ends at {at} of {p['total']}")
        try:
            self.reasm.verify_slot()
        except PolicyError as e:
            raise InvariantError(f"complete() but verify_slot: {e.code}") from e

    def check(self) -> None:
        p = self.reasm.progress
        if load_json(self.port.store, PROGRESS) != p:
            raise InvariantError("persisted progress differs from the in-memory one")
        if p is None:
            return
        signed = _signed()
        for i, s, n in p["done"]:
            if (p["v"], p["sha"], i, s, n) not in signed:
                raise InvariantError(f"done fragment {i} ({s}+{n}) was never signed")
            fw = signed[(p["v"], p["sha"], i, s, n)]
            if self.port.flash[s : s + n] != fw[s : s + n]:
                raise InvariantError(f"slot bytes of done fragment {i} ({s}+{n}) changed")


_SIGNED: dict[tuple, bytes] = {}


def _signed() -> dict[tuple, bytes]:
    """(version, sha hex, index, offset, length) of every fixture fragment -> firmware."""
    if not _SIGNED:
        for f in fixtures.reassembly_files():
            h = image.parse_header(f.data)
            m = image.parse_manifest(memoryview(f.data)[h.header_length :], h)
            sha = hexlify(hashlib.sha256(f.firmware).digest()).decode()
            key = (m.file_version, sha, m.fragment_index, m.fragment_offset, m.fragment_length)
            _SIGNED[key] = f.firmware
    return _SIGNED


def _step(board: Board, s: _Script, files: tuple[fixtures.Fragment, ...]) -> None:
    op = s.byte() % 6
    if op in (GOOD, MUTATE, TRUNCATE):
        data = files[s.byte() % len(files)].data
        if op == GOOD:
            board.deliver(data, s.byte())
        elif op == MUTATE:
            pos, x = s.u16() % len(data), s.byte() or 1
            board.deliver(data[:pos] + bytes([data[pos] ^ x]) + data[pos + 1 :], s.byte())
        else:
            cut, flag = s.u16() % len(data), s.byte()
            board.deliver(data, flag >> 1, cut, abort=not flag & 1)
    elif op == REBOOT:
        board.reboot()
    elif op == RAW:
        board.deliver(s.take(s.u16() % 2048), s.byte())
    else:
        board.reasm.cancel()


def run(data: bytes) -> None:
    """Play the script in `data` on a fresh board, checking invariants after each step."""
    files = fixtures.reassembly_files()
    board = Board()
    s = _Script(data)
    for _ in range(MAX_OPS):
        if not s.more():
            break
        _step(board, s, files)
        board.check()


def script(*steps: tuple[int, ...]) -> bytes:
    """Seed helper: steps as (op, args...) with u16 args given as two bytes."""
    return bytes(b for step in steps for b in step)
