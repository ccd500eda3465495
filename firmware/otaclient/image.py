"""Streaming verifier for our GBCS-form OTA files: header, manifest, payload, signature.

Fixed buffers only, any chunking; it hands firmware bytes to a sink but decides no
policy (that is `check`'s job) and never trusts them before `finish()` returns.
"""

import hashlib
import sys

from otaclient import inflate, let_go
from otaclient.imagefmt import (
    FIELD_CONTROL,
    H_TOTAL_SIZE,
    HEADER_LENGTH,
    M_COMPRESSED,
    M_KEY_ID,
    M_LENGTH,
    M_OFFSET,
    M_PAYLOAD,
    MANIFEST_SIZE,
    MAX_FILE,
    PIECE_MAX,
    PIECE_SIZE,
    SIG_SIZE,
    SUPPLIER_TAG,
    TRAILER_SIZE,
    WBITS,
    ImageError,
    parse_header,
    parse_manifest,
)

if sys.implementation.name != "micropython":  # host callers: the whole codec from one module
    from otaclient.imagefmt import *  # noqa: F403

from micropython import const

_ST_HEAD = const(0)
_ST_MAN = const(1)
_ST_BODY = const(2)
_ST_SIG = const(3)
_ST_TRAIL = const(4)
_ST_END = const(5)
_OUT = const(256)  # decompressed bytes per sink call
_PREFIX = const(140)  # HEADER_LENGTH + MANIFEST_SIZE (const() needs a literal)


def prepare():
    """Boot: take the inflater's decoder with its piece and output buffers now (~5.5 KB),
    while the heap still has large holes. And load P-256 once and let it go: its names
    stay interned, so no later load (p256_call) grows the name pool in a used heap."""
    inflate.shared(PIECE_MAX, WBITS)
    inflate.out_buffer(_OUT)
    from otaclient import p256  # noqa: F401

    let_go("p256")


def p256_call(name, *args):
    """p256.<name>(*args), with P-256 loaded for this call only: its functions, tables
    and constants (~1.2 KB) are not held through a transfer, which never needs them (a
    verify ends each fragment, a signature follows an activation)."""
    try:
        from otaclient import p256

        return getattr(p256, name)(*args)
    finally:
        let_go("p256")


class Verifier:
    """Feed an OTA file in order; `sink(fw_offset, mv)` gets firmware bytes (mv is only
    valid during the call); `finish()` checks size and signature."""

    def __init__(self, lookup_key, sink, check=None, max_size=MAX_FILE):
        self._buf = bytearray(_PREFIX)  # header + manifest, then reused for the trailer
        self._sig = bytearray(SIG_SIZE)
        self.reset(lookup_key, sink, check, max_size)

    def reset(self, lookup_key, sink, check=None, max_size=MAX_FILE):
        """Start a new file. A board keeps one Verifier for its life and resets it per
        file, so its attribute table and buffers are taken at boot, not in a used heap;
        `reset(None, None)` lets go of the last file's hashes, key and header."""
        self._lookup = lookup_key
        self._sink = sink
        self._check = check
        self._max = max_size
        self.header = None
        self.manifest = None
        self.signature = None  # manufacturer r || s
        self.digest = None  # SHA-256 of the bytes it signs
        self.supplier_signature = None  # from a `00 40` trailer, else None
        self.supplier_digest = None  # SHA-256 of every byte before the trailer
        self._state = _ST_HEAD
        self._left = HEADER_LENGTH
        self._end = HEADER_LENGTH
        self._pos = 0
        self._err = None
        self._pub = self._h = self._h2 = None
        self._trailer = False
        self._fw = 0
        self._inf = self._out = self._zpre = None
        self._zfill = self._zlen = 0

    def feed(self, data):
        """Accept the next bytes of the file; ImageError as soon as something is wrong."""
        if self._err:
            raise self._err
        mv = memoryview(data)
        try:
            while mv:
                mv = mv[self._step(mv) :]
        except ImageError as e:
            self._err = e
            raise

    def finish(self, scratch=None):
        """After the last byte: the Manifest if the file is whole and correctly signed.
        `scratch`: an idle buffer of >= 772 bytes the signature check may work in."""
        if self._err:
            raise self._err
        try:
            if self._state != _ST_END:
                raise ImageError("TRUNCATED", "%d bytes" % self._pos)
            if not p256_call("verify", self._pub, self.digest, self._sig, scratch):
                raise ImageError("INVALID_SIGNATURE")
        except ImageError as e:
            self._err = e
            raise
        return self.manifest

    def _step(self, mv):
        if self._state == _ST_END:
            raise ImageError("TRAILING_DATA", "after %d bytes" % self._pos)
        n = min(len(mv), self._left)
        if self._state == _ST_BODY:
            self._body(mv[:n])
        else:
            buf = self._sig if self._state == _ST_SIG else self._buf
            off = self._end - self._left
            buf[off : off + n] = mv[:n]
        self._left -= n
        self._pos += n
        if not self._left:
            self._advance()
        return n

    def _goto(self, state, size, end):
        self._state = state
        self._left = size
        self._end = end

    def _advance(self):
        st = self._state
        if st == _ST_HEAD:
            self._on_header()
            self._goto(_ST_MAN, MANIFEST_SIZE, _PREFIX)
        elif st == _ST_MAN:
            self._on_manifest()
            self._goto(_ST_BODY, self.manifest[M_PAYLOAD], 0)
        elif st == _ST_BODY:
            self._on_body_end()
            self._goto(_ST_SIG, SIG_SIZE, SIG_SIZE)
        elif st == _ST_SIG:
            self._on_signature()
        else:
            self._on_trailer()

    def _on_header(self):
        h = parse_header(self._buf, FIELD_CONTROL)
        if h[H_TOTAL_SIZE] > self._max:
            raise ImageError("TOO_LARGE", "%d > %d" % (h[H_TOTAL_SIZE], self._max))
        if h[H_TOTAL_SIZE] < _PREFIX + SIG_SIZE:
            raise ImageError("SIZE_MISMATCH", "total size too small")
        self.header = h

    def _on_manifest(self):
        m = parse_manifest(memoryview(self._buf)[HEADER_LENGTH:], self.header)
        if not m[M_PAYLOAD]:
            raise ImageError("BAD_MANIFEST", "empty payload")
        self._pub = self._lookup(m[M_KEY_ID])
        if self._pub is None:
            raise ImageError("UNKNOWN_KEY", "%08x" % m[M_KEY_ID])
        self.manifest = m
        if self._check:
            self._check(self.header, m)
        self._trailer = self.header[H_TOTAL_SIZE] - self._pos - m[M_PAYLOAD] > SIG_SIZE
        self._h = hashlib.sha256(self._buf)
        if self._trailer:
            self._h2 = hashlib.sha256(self._buf)
        self._fw = m[M_OFFSET]
        if m[M_COMPRESSED]:
            self._inf = inflate.shared(PIECE_MAX, WBITS)
            self._out = inflate.out_buffer(_OUT)
            self._zpre = bytearray(2)

    def _body(self, mv):
        self._h.update(mv)
        if self._h2:
            self._h2.update(mv)
        if self._inf is None:
            self._sink(self._fw, mv)
            self._fw += len(mv)
        else:
            self._pieces(mv)

    def _pieces(self, mv):
        # each piece: u16 compressed length, then raw deflate of one 4096-byte sector
        while mv:
            if self._zlen:
                n = min(len(mv), self._zlen - self._zfill)
                self._inf.write(mv[:n])
            else:
                n = 1
                self._zpre[self._zfill] = mv[0]
            self._zfill += n
            mv = mv[n:]
            if not self._zlen and self._zfill == 2:
                self._zlen = self._zpre[0] | self._zpre[1] << 8
                self._zfill = 0
                if not 0 < self._zlen <= PIECE_MAX:
                    raise ImageError("BAD_COMPRESSION", "piece length")
            elif self._zlen and self._zfill == self._zlen:
                self._piece()

    def _piece(self):
        m = self.manifest
        want = min(PIECE_SIZE, m[M_OFFSET] + m[M_LENGTH] - self._fw)
        inf = self._inf
        inf.start()
        out = memoryview(self._out)
        got = 0
        while got < want:
            try:
                n = inf.readinto(out[: min(len(out), want - got)])
            except (OSError, EOFError, ValueError):
                raise ImageError("BAD_COMPRESSION", "piece at %d" % self._fw)
            if not n:
                raise ImageError("BAD_COMPRESSION", "short piece at %d" % self._fw)
            self._sink(self._fw + got, out[:n])
            got += n
        if not inf.done():
            raise ImageError("BAD_COMPRESSION", "long piece at %d" % self._fw)
        self._fw += got
        self._zfill = self._zlen = 0

    def _on_body_end(self):
        m = self.manifest
        if self._zfill or self._zlen or self._fw != m[M_OFFSET] + m[M_LENGTH]:
            raise ImageError("BAD_COMPRESSION", "payload ends mid-piece")
        self._inf = self._out = None

    def _on_signature(self):
        self.digest = self._h.digest()
        self.signature = bytes(self._sig)
        self._h = None
        if self._trailer:
            self._h2.update(self._sig)
            self._goto(_ST_TRAIL, TRAILER_SIZE, TRAILER_SIZE)
        else:
            self._goto(_ST_END, 0, 0)

    def _on_trailer(self):
        if self._buf[:2] != SUPPLIER_TAG:
            raise ImageError("TRAILING_DATA", "not a supplier trailer")
        self.supplier_signature = bytes(self._buf[2:TRAILER_SIZE])
        self.supplier_digest = self._h2.digest()
        self._h2 = None
        self._goto(_ST_END, 0, 0)
