"""Collect one raw-deflate piece (window 4 KB), then read it back decompressed.

MicroPython's `deflate.DeflateIO` over a preallocated native `io.BytesIO` (it pulls input
a byte at a time, so a Python-level stream would cost a call per byte); CPython's zlib.
"""

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
            # keep a window-sized hole reserved next to it; freed just before DeflateIO
            # allocates its window, so a fragmented heap still has room for it
            self._hole = bytearray(1 << wbits)
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
            self._hole = None
            return deflate.DeflateIO(self._buf, deflate.RAW, self._wbits)
        return _ZReader(bytes(self._buf[:n]), self._wbits)

    def rearm(self):
        """After a piece: reserve the window's hole again (best effort)."""
        if deflate is not None and self._hole is None:
            try:
                self._hole = bytearray(1 << self._wbits)
            except MemoryError:
                pass


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
