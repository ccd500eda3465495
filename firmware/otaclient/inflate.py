"""Collect one raw-deflate piece (window 4 KB), then read it back decompressed.

MicroPython's `deflate.DeflateIO` over a preallocated native `io.BytesIO` (it pulls input
a byte at a time, so a Python-level stream would cost a call per byte); CPython's zlib.
"""

import gc
import io

try:
    import deflate
except ImportError:
    deflate = None
    import zlib


class _ZReader:
    # CPython stand-in for DeflateIO: readinto() until 0
    def __init__(self, src, wbits):
        self._d = zlib.decompressobj(-wbits)
        self._src = src

    def readinto(self, out):
        try:
            data = self._d.decompress(self._src, len(out))
        except zlib.error:
            raise ValueError("bad deflate data")
        self._src = self._d.unconsumed_tail
        out[: len(data)] = data
        return len(data)


class Inflater:
    """One reusable compressed-piece buffer of `size` bytes."""

    def __init__(self, size, wbits=12):
        self._wbits = wbits
        self._size = size
        self._n = 0
        if deflate is not None:
            self._buf = io.BytesIO(size)  # MicroPython: preallocated, written in place
            # keep a hole reserved next to it, freed just before DeflateIO allocates its
            # decompressor state (~1.3 KB) and window (first fit: both must fit in it), so
            # a fragmented heap still has room for them
            self._hole = bytearray(_hole_size(wbits))
        else:
            self._buf = bytearray(size)

    def write(self, mv):
        """Append compressed bytes (the caller keeps the total within `size`)."""
        if deflate is not None:
            if not self._n:
                self._buf.seek(0)  # the last piece's reader left the position at its end
            self._buf.write(mv)
        else:
            self._buf[self._n : self._n + len(mv)] = mv
        self._n += len(mv)

    def reader(self):
        """A stream over the collected piece: readinto(buf) -> n, 0 at its end; then
        the buffer is free for the next piece. Bad data: OSError, EOFError or ValueError."""
        n = self._n
        self._n = 0
        if deflate is not None:
            self._buf.seek(0)
            r = deflate.DeflateIO(self._buf, deflate.RAW, self._wbits)  # not in the hole
            self._hole = None
            gc.collect()  # the hole is free now, for the reader's state and window
            return r
        return _ZReader(bytes(self._buf[:n]), self._wbits)

    def rearm(self):
        """After a piece (its reader dropped): take the hole back where the reader's
        state and window were (collected first, so first fit finds that spot)."""
        if deflate is not None and self._hole is None:
            gc.collect()
            try:
                self._hole = bytearray(_hole_size(self._wbits))
            except MemoryError:
                pass


def _hole_size(wbits):
    # window + DeflateIO's read state (uzlib tables: 1344 bytes on a 64-bit port, less on
    # 32-bit), which the first read takes, + 64 bytes for a small object that lands in it
    # first (the caller's slice of its output buffer); all of it is garbage after the
    # piece, so rearm() finds the same spot free again
    return (1 << wbits) + 1344 + 64


_shared = None


def shared(size, wbits):
    """One Inflater for the whole program: its buffers are allocated once, early."""
    global _shared
    if _shared is None or _shared._wbits != wbits or _shared._size != size:
        _shared = Inflater(size, wbits)
    _shared._n = 0
    return _shared


_out = None


def out_buffer(size):
    """The shared decompressed-output buffer (one per program, like the Inflater)."""
    global _out
    if _out is None or len(_out) != size:
        _out = bytearray(size)
    return _out
