"""Decode compressed pieces with one decoder kept for the program's life.

Each piece (docs/image-format.md) is raw deflate from a fresh compressor, ended by a
full flush: an empty stored block (`00 00 FF FF`), never a final block. Back to back the
pieces are one endless deflate stream, and each also starts a valid stream on its own.

MicroPython: one `deflate.DeflateIO` over one preallocated native `io.BytesIO` (it pulls
input a byte at a time; a Python-level stream would cost a call per byte). Its state and
window (its largest block) are taken once, by a first read at `prepare()` time, so no piece needs
a large free block in a fragmented heap. After a piece's bytes, a fence follows it in
the buffer: a stored block holding one known byte. Reading that one byte proves the
piece decoded to nothing more (a long piece would give its next byte instead) and
leaves the decoder at a block boundary, where the next piece starts. A decoding error,
or a piece left half read, costs a new decoder at the next piece.
CPython: zlib, one decompressobj per piece, the same checks.
"""

import io

try:
    import deflate
except ImportError:
    deflate = None
    import zlib

SYNC = b"\x00\x00\xff\xff"  # a piece's last bytes: LEN/NLEN of the flush's empty stored block
_FENCE = b"\x00\x01\x00\xfe\xff\x5a"  # stored block (not final), 1 byte: 0x5A
_FENCE_BYTE = 0x5A


class Inflater:
    """Collects one compressed piece of at most `size` bytes, then reads it back."""

    def __init__(self, size, wbits):
        self._wbits = wbits
        self._size = size
        self._n = 0  # compressed bytes of the piece collected so far
        self._d = None  # the decoder; None: a new one before the next piece
        self._reading = False  # a piece is being read back
        if deflate is not None:
            self._buf = io.BytesIO(size + len(_FENCE))  # preallocated, written in place
            self._one = bytearray(1)
            self._restart()
        else:
            self._buf = bytearray(size)

    def reset(self):
        """Drop a partly collected piece (a new file, or one that failed)."""
        self._n = 0

    def write(self, mv):
        """Append compressed bytes (the caller keeps a piece within `size`)."""
        if deflate is not None:
            if self._d is None:  # after a bad piece: a new decoder, before this piece's bytes
                self._restart()
            self._buf.seek(self._n)
            self._buf.write(mv)
        else:
            self._buf[self._n : self._n + len(mv)] = mv
        self._n += len(mv)

    def start(self):
        """Begin reading the collected piece back; readinto() then gives its bytes."""
        if deflate is None:
            d = zlib.decompressobj(-self._wbits)
            src = bytes(self._buf[: self._n])
            try:
                self._out = d.decompress(src)
            except zlib.error:
                self._out = None
            self._end_ok = not d.eof and not d.unconsumed_tail and src[-4:] == SYNC
            self._pos = 0
            self._n = 0
            return
        self._buf.seek(0)
        self._reading = True

    def readinto(self, mv):
        """Fill `mv` with the piece's next bytes (never more than are due: the caller asks
        for the piece's length in total); ValueError, OSError or EOFError on bad data."""
        if deflate is None:
            if self._out is None:
                raise ValueError("bad deflate data")
            n = min(len(mv), len(self._out) - self._pos)
            mv[:n] = self._out[self._pos : self._pos + n]
            self._pos += n
            return n
        try:
            return self._d.readinto(mv)
        except Exception:
            self._d = None  # a new decoder for the next piece
            raise

    def done(self):
        """After the piece's bytes: True when it held no more (not a long piece, not a
        final block); the decoder then waits at a block boundary for the next piece."""
        if deflate is None:
            return self._end_ok and self._pos == len(self._out)
        self._reading = False
        ok = self._fence(self._n)
        self._n = 0
        if not ok:
            self._d = None
        return ok

    def idle(self):
        """Between pieces: a piece left half read (an error in the caller's sink) leaves
        the decoder mid-stream, so the next piece gets a new one."""
        if deflate is not None and self._reading:
            self._reading = False
            self._d = None
        self.reset()

    def _fence(self, end):
        # the fence after the piece's `end` bytes; its one byte must come next, and last
        b = self._buf
        at = b.tell()
        b.seek(end)
        b.write(_FENCE)
        b.seek(at)
        try:
            n = self._d.readinto(self._one, 1)
        except MemoryError:
            raise  # no room for a decoder is not bad data
        except Exception:
            return False
        return n == 1 and self._one[0] == _FENCE_BYTE and b.tell() == end + len(_FENCE)

    def _restart(self):
        # a new decoder; its first read (the fence alone) takes its state and window now
        self._d = None
        self._buf.seek(0)
        self._d = deflate.DeflateIO(self._buf, deflate.RAW, self._wbits)
        if not self._fence(0):
            raise ValueError("deflate: no decoder")
        self._n = 0


_shared = None


def shared(size, wbits):
    """One Inflater for the whole program, its decoder and buffers taken once, early."""
    global _shared
    if _shared is None or _shared._wbits != wbits or _shared._size != size:
        _shared = None
        _shared = Inflater(size, wbits)
    _shared.idle()
    return _shared


def release():
    """A reset follows (activation): let the decoder's state and window (KBs) go now.
    A piece after all (no reset came) takes a new decoder, as after a bad piece."""
    if _shared is not None:
        _shared._d = None


_out = None


def out_buffer(size):
    """The shared decompressed-output buffer (one per program, like the Inflater)."""
    global _out
    if _out is None or len(_out) != size:
        _out = bytearray(size)
    return _out
