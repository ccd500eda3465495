"""Decode one raw-deflate piece (window 4 KB) into a caller's buffer.

MicroPython's `deflate.DeflateIO` on the board, CPython's zlib on the host; nothing else.
"""

try:
    import deflate
except ImportError:
    deflate = None
    import zlib

import io


class _Src(io.IOBase):
    # a readable stream over a memoryview, so DeflateIO reads without a copy
    def __init__(self, mv):
        self._mv = mv
        self._pos = 0

    def readinto(self, buf):
        n = min(len(buf), len(self._mv) - self._pos)
        buf[:n] = self._mv[self._pos : self._pos + n]
        self._pos += n
        return n


def _mpy(src, out, wbits):
    d = deflate.DeflateIO(_Src(src), deflate.RAW, wbits)
    got = 0
    mv = memoryview(out)
    try:
        while got < len(out):
            n = d.readinto(mv[got:])
            if not n:
                break
            got += n
        extra = d.read(1)
    except OSError:
        raise ValueError("bad deflate data")
    if extra:
        raise ValueError("piece too long")
    return got


def _cpy(src, out, wbits):
    d = zlib.decompressobj(-wbits)
    try:
        data = d.decompress(src, len(out) + 1)
    except zlib.error:
        raise ValueError("bad deflate data")
    if len(data) > len(out) or not d.eof:
        raise ValueError("piece too long or unterminated")
    out[: len(data)] = data
    return len(data)


def inflate_into(src, out, wbits=12):
    """Decompress the whole raw-deflate stream `src` into `out`; return the byte count.

    ValueError if the data is corrupt, unterminated, or decodes to more than len(out).
    """
    if deflate is not None:
        return _mpy(src, out, wbits)
    return _cpy(src, out, wbits)
