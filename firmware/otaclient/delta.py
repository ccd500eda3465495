"""Apply a delta payload as it streams in: base bytes read from the running slot, target
bytes handed on in order (reassembly writes them into the update slot).

It never writes flash and never touches the running slot but to read it; it checks the
base before any target byte goes out. The target's SHA-256 is checked on the slot
read-back (reassembly.verify_slot). docs/image-format.md has the payload byte by byte.
"""

import struct

from micropython import const

from otaclient.imagefmt import ImageError

DESC_SIZE = const(88)
_VERSION = const(1)
_ALG = const(1)  # bsdiff-ops: COPY, ADD, INSERT, SEEK
_COPY = const(0)
_ADD = const(1)
_INSERT = const(2)
_SEEK = const(3)
_BLK = const(128)  # base bytes read (and added to) per step: its buffer and the two masks
# below are ~144-byte blocks, which a heap cut up by a transfer still has (not ~272)
# ADD is a byte-wise sum mod 256. Done per block on big ints (SWAR), it runs in C: the
# low 7 bits of every lane add without a carry out of the lane, the top bits are XORed in
_M7 = int.from_bytes(b"\x7f" * _BLK, "little")
_M8 = _M7 ^ ((1 << (8 * _BLK)) - 1)


def digest(read, length, buf):
    """SHA-256 of the first `length` bytes that read(offset, mv) gives, through `buf`."""
    import hashlib  # here, not a global: each global is a slot of the module's table

    h = hashlib.sha256()
    mv = memoryview(buf)
    off = 0
    while off < length:
        k = min(len(mv), length - off)
        read(off, mv[:k])
        h.update(mv[:k])
        off += k
    return h.digest()


class Applier:
    """feed() the payload's bytes in order, then end(). `read_base(offset, mv)` reads the
    running slot, `base_digest(length)` is its SHA-256 over `length` bytes, `out(mv)`
    takes the next target bytes (mv is valid only during the call), `limit` is the most
    either slot holds. `dry`: check the descriptor and its base, apply nothing."""

    def __init__(self, read_base, base_digest, out, limit, dry=False):
        self._read = read_base
        self._digest = base_digest
        self._out = out
        self._limit = limit
        self._dry = dry
        self._buf = bytearray(_BLK)  # the descriptor, then base bytes
        self._fill = 0  # descriptor bytes collected; -1 once it checked out
        self._v = self._shift = 0  # the op's varint, as far as read
        self._kind = -1  # the op in progress (-1: none)
        self._n = 0  # its bytes still due
        self._old = 0  # base offset
        self._blen = 0
        self.base_version = 0
        self.target_length = 0
        self.target_sha256 = None
        self.written = 0

    def feed(self, mv):
        mv = memoryview(mv)
        while mv:
            if self._fill >= 0:
                k = min(len(mv), DESC_SIZE - self._fill)
                self._buf[self._fill : self._fill + k] = mv[:k]
                self._fill += k
                mv = mv[k:]
                if self._fill == DESC_SIZE:
                    self._descriptor()
            elif self._dry:
                return
            elif self._kind < 0:
                self._op(mv[0])
                mv = mv[1:]
            else:
                mv = mv[self._data(mv) :]

    def end(self):
        """After the last payload byte: ImageError BAD_DELTA unless every op is whole and
        the target is complete."""
        if self._fill >= 0 or (
            not self._dry and (self._kind >= 0 or self._shift or self.written != self.target_length)
        ):
            raise ImageError("BAD_DELTA", "ends at target byte %d" % self.written)

    def _descriptor(self):
        # literals here, not globals: the module's table (a block of its own when it loads
        # mid-transfer, in a cut-up heap) stays at 9 slots
        magic, ver, alg, size, bver, blen, bsha, tlen, tsha, _ = struct.unpack_from(
            "<4sBBHII32sI32sI", self._buf, 0
        )
        if magic != b"HNDP" or ver != _VERSION or alg != _ALG or size != DESC_SIZE:
            raise ImageError("BAD_DELTA", "descriptor")
        if not (0 < tlen <= self._limit and 0 < blen <= self._limit):
            raise ImageError("BAD_DELTA", "larger than the slot")
        self._fill = -1
        self.base_version = bver
        self._blen = blen
        self.target_length = tlen
        self.target_sha256 = bytes(tsha)
        if self._digest(blen) != bytes(bsha):
            raise ImageError("DELTA_BASE", "running firmware is not the base")

    def _op(self, b):
        self._v |= (b & 0x7F) << self._shift
        self._shift += 7
        if b & 0x80:
            if self._shift >= 35:
                raise ImageError("BAD_DELTA", "op length")
            return
        kind = self._v & 3
        n = self._v >> 2
        self._v = self._shift = 0
        if kind == _SEEK:
            self._old += -((n + 1) >> 1) if n & 1 else n >> 1
            return
        if not n or self.written + n > self.target_length:
            raise ImageError("BAD_DELTA", "op past the target at %d" % self.written)
        if kind != _INSERT and not (0 <= self._old and self._old + n <= self._blen):
            raise ImageError("BAD_DELTA", "base read outside the base at %d" % self._old)
        self._kind = kind
        self._n = n
        if kind == _COPY:
            mv = memoryview(self._buf)
            while n:
                k = min(n, _BLK)
                self._read(self._old, mv[:k])
                self._emit(mv[:k])
                self._old += k
                n -= k
            self._kind = -1

    def _data(self, mv):
        k = min(len(mv), self._n, _BLK)
        if self._kind == _INSERT:
            self._emit(mv[:k])
        else:
            old = memoryview(self._buf)[:k]
            self._read(self._old, old)
            a = int.from_bytes(old, "little")
            b = int.from_bytes(mv[:k], "little")
            self._emit((((a & _M7) + (b & _M7)) ^ ((a ^ b) & _M8)).to_bytes(k, "little"))
            self._old += k
        self._n -= k
        if not self._n:
            self._kind = -1
        return k

    def _emit(self, mv):
        self._out(mv)
        self.written += len(mv)
