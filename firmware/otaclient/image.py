"""Streaming verifier for our GBCS-form OTA files: signed head first, then a hash-chained payload.

Fixed buffers only, any chunking; it hands the sink only firmware bytes whose chunk
hashed to the link the signed manifest (or the chunk before) announced. No policy
(that is `check`'s job), and no reading ahead: a chunk is held until it is authenticated.
"""

import hashlib
import sys

from otaclient import inflate, let_go
from otaclient.imagefmt import (
    CHUNK_SIZE,
    FIELD_CONTROL,
    H_TOTAL_SIZE,
    HEADER_LENGTH,
    LINK_SIZE,
    M_CHAIN,
    M_COMPRESSED,
    M_DELTA,
    M_KEY_ID,
    M_LENGTH,
    M_OFFSET,
    M_PAYLOAD,
    MANIFEST_SIZE,
    MAX_FILE,
    PIECE_MAX,
    PIECE_SIZE,
    SIG_SIZE,
    SIGNED_END,
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
_ST_SIG = const(2)
_ST_SUP = const(3)  # the supplier signature, when the file has one
_ST_AUTH = const(4)  # the head is whole: authenticate() before any payload byte
_ST_BODY = const(5)
_ST_END = const(6)
_OUT = const(256)  # decompressed bytes per sink call
_AUTH_AT = const(220)  # SIGNED_END + SIG_SIZE: the head of a file with no supplier signature


def prepare():
    """Boot: take the inflater's decoder, its piece and output buffers (the largest) now,
    while the heap still has large holes. And load P-256 once and let it go: its names
    stay interned, so no later load (p256_call) grows the name pool in a used heap."""
    inflate.shared(PIECE_MAX, WBITS)
    inflate.out_buffer(_OUT)
    from otaclient import p256  # noqa: F401

    let_go("p256")


def p256_call(name, *args):
    """p256.<name>(*args), with P-256 loaded for this call only: its functions, tables
    and constants are not held through a transfer, which never needs them (a
    verify starts each fragment, a signature follows an activation)."""
    try:
        from otaclient import p256

        return getattr(p256, name)(*args)
    finally:
        let_go("p256")


class Verifier:
    """Feed an OTA file in order; `sink(fw_offset, mv)` gets firmware bytes (mv is only
    valid during the call), each chunk once it is authenticated. The head (header,
    manifest, signatures) is authenticated once it is whole: by `authenticate()`, which a
    board calls from its loop with a scratch buffer, else by the next `feed()` itself."""

    def __init__(self, lookup_key, sink, check=None, max_size=MAX_FILE, chunk=None):
        self._buf = bytearray(SIGNED_END)  # header + manifest, then the supplier signature
        # the signature; once it verified, [0:16] the link the next chunk must hash to and
        # [16:32] the link a chunk carries for the one after it
        self._sig = bytearray(SIG_SIZE)
        self._chunk = None
        self.reset(lookup_key, sink, check, max_size, chunk)

    def reset(self, lookup_key, sink, check=None, max_size=MAX_FILE, chunk=None):
        """Start a new file. A board keeps one Verifier for its life and resets it per
        file, so its attribute table and buffers are taken at boot, not in a used heap;
        `reset(None, None)` lets go of the last file's hashes, key and header. `chunk`:
        a CHUNK_SIZE buffer to hold an uncompressed chunk in until it is authenticated
        (a board lends its flash write buffer); else the Verifier makes its own."""
        self._lookup = lookup_key
        self._sink = sink
        self._check = check
        self._max = max_size
        if chunk is not None and len(chunk) == CHUNK_SIZE or lookup_key is None:
            self._chunk = chunk
        self.header = None
        self.manifest = None
        self.signature = None  # manufacturer r || s
        self.digest = None  # SHA-256 of the bytes it signs (header and manifest)
        self.supplier_signature = None  # from a `00 40` supplier part, else None
        self.supplier_digest = None  # SHA-256 of the head before the supplier part
        self.head_id = None  # 8 bytes naming this file's head, signatures included
        self.auth_at = _AUTH_AT  # file offset where the head ends (a supplier part: + 66)
        self.authenticated = False
        self._state = _ST_HEAD
        self._left = HEADER_LENGTH
        self._end = HEADER_LENGTH
        self._pos = 0
        self._err = None
        # an instance table of more than 29 attributes would need a 37-slot table (592
        # bytes) grown in a used heap: state shares attributes where it can
        self._pub = self._h = None  # self._h: the head's hash, then each chunk's
        self._fw = 0
        self._lnk = -1  # bytes of the next chunk's link read so far; -1: not reading one,
        # -2: the last chunk went to the sink
        self._inf = None
        self._zfill = self._zlen = 0  # bytes of the chunk's data (uncompressed) or the piece

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

    def authenticate(self, scratch=None):
        """Check the manufacturer signature over header and manifest, before any payload
        byte is taken. `scratch`: an idle buffer of >= 772 bytes P-256 may work in."""
        if self._err:
            raise self._err
        try:
            if not p256_call("verify", self._pub, self.digest, self._sig, scratch):
                raise ImageError("INVALID_SIGNATURE")
        except ImageError as e:
            self._err = e
            raise
        m = self.manifest
        self._pub = None
        self.authenticated = True
        self._sig[:LINK_SIZE] = m[M_CHAIN]  # chunk 0 must hash to this
        self._h = hashlib.sha256()
        self._fw = m[M_OFFSET]
        if m[M_COMPRESSED]:
            self._inf = inflate.shared(PIECE_MAX, WBITS)
        elif self._chunk is None or m[M_DELTA]:
            # a delta's patch bytes must not wait in the write buffer its target bytes
            # go through (reassembly): a chunk buffer of its own, for this file only
            self._chunk = bytearray(CHUNK_SIZE)
        self._goto(_ST_BODY, m[M_PAYLOAD], 0)

    def finish(self):
        """After the last byte: the Manifest if the file is whole (its head authenticated
        and every chunk hashed to its link)."""
        if self._err:
            raise self._err
        if self._state != _ST_END:
            self._err = ImageError("TRUNCATED", "%d bytes" % self._pos)
            raise self._err
        return self.manifest

    def _step(self, mv):
        st = self._state
        if st == _ST_END:
            raise ImageError("TRAILING_DATA", "after %d bytes" % self._pos)
        if st == _ST_AUTH:  # a caller that fed on without authenticate(): do it now
            self.authenticate()
            return 0
        n = min(len(mv), self._left)
        if st == _ST_BODY:
            self._chain(mv[:n])
        else:
            buf = self._sig if st == _ST_SIG else self._buf
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
            self._goto(_ST_MAN, MANIFEST_SIZE, SIGNED_END)
        elif st == _ST_MAN:
            self._on_manifest()
            self._goto(_ST_SIG, SIG_SIZE, SIG_SIZE)
        elif st == _ST_BODY:
            self._on_body_end()
        else:
            if st == _ST_SIG:
                self.signature = bytes(self._sig)
                self._h = hashlib.sha256(self.digest)  # the head's id: digest and signatures
                self._h.update(self._sig)
                self._state = _ST_AUTH
                if self.auth_at > _AUTH_AT:  # _buf still holds header and manifest
                    h = hashlib.sha256(self._buf)
                    h.update(self._sig)
                    self.supplier_digest = h.digest()
                    self._goto(_ST_SUP, TRAILER_SIZE, TRAILER_SIZE)
            elif self._buf[:2] != SUPPLIER_TAG:
                raise ImageError("TRAILING_DATA", "supplier")
            else:
                self.supplier_signature = bytes(self._buf[2:TRAILER_SIZE])
                self._h.update(self.supplier_signature)
                self._state = _ST_AUTH
            if self._state == _ST_AUTH:  # the head is whole: its id, then authenticate()
                self.head_id = self._h.digest()[:8]
                self._h = None

    def _on_header(self):
        h = parse_header(self._buf, FIELD_CONTROL)
        if h[H_TOTAL_SIZE] > self._max:
            raise ImageError("TOO_LARGE", "%d > %d" % (h[H_TOTAL_SIZE], self._max))
        if h[H_TOTAL_SIZE] < _AUTH_AT:
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
        self.digest = hashlib.sha256(self._buf).digest()
        if self.header[H_TOTAL_SIZE] - _AUTH_AT - m[M_PAYLOAD] > 0:  # a supplier signature
            self.auth_at = _AUTH_AT + TRAILER_SIZE

    # --- the payload: chunks, each followed (but the last) by the next one's link ----------

    def _chain(self, mv):
        m = self.manifest
        end = m[M_OFFSET] + m[M_LENGTH]
        while mv:
            lnk = self._lnk
            if lnk == -2:
                raise ImageError("BAD_CHAIN", "after end")
            if lnk >= 0:  # the link after this chunk's data
                n = min(len(mv), LINK_SIZE - lnk)
                self._sig[LINK_SIZE + lnk : LINK_SIZE + lnk + n] = mv[:n]
                self._lnk += n
                mv = mv[n:]
                if self._lnk < LINK_SIZE:
                    continue
                self._h.update(memoryview(self._sig)[LINK_SIZE : 2 * LINK_SIZE])
            elif self._inf is None:  # an uncompressed chunk's data, held until it hashes
                size = min(CHUNK_SIZE, end - self._fw)
                n = min(len(mv), size - self._zfill)
                self._chunk[self._zfill : self._zfill + n] = mv[:n]
                self._h.update(mv[:n])
                self._zfill += n
                mv = mv[n:]
                if self._zfill < size:
                    continue
                lnk = self._fw + size < end  # the last chunk has no link after it
            else:
                mv = mv[self._pieces(mv) :]
                if not self._zlen or self._zfill < self._zlen:
                    continue
                lnk = self._fw + PIECE_SIZE < end
            if lnk is True:  # the data is in, its link follows
                self._lnk = 0
                continue
            # a whole chunk: it must hash to the link announced for it, else nothing of it
            # goes on
            if self._h.digest()[:LINK_SIZE] != self._sig[:LINK_SIZE]:
                raise ImageError("BAD_CHAIN", "at %d" % self._fw)
            if self._inf is None:
                self._sink(self._fw, memoryview(self._chunk)[: self._zfill])
                self._fw += self._zfill
                self._zfill = 0
            else:
                self._piece()
            if lnk is False:  # the last chunk
                self._lnk = -2
                self._h = None
            else:
                self._sig[:LINK_SIZE] = memoryview(self._sig)[LINK_SIZE : 2 * LINK_SIZE]
                self._lnk = -1
                self._h = hashlib.sha256()

    def _pieces(self, mv):
        # a compressed chunk's data: one piece, a u16 compressed length then raw deflate
        # of PIECE_SIZE firmware bytes, collected by the inflater and decoded once it hashes
        if self._zlen:
            n = min(len(mv), self._zlen - self._zfill)
            self._inf.write(mv[:n])
        else:
            n = 1
            self._sig[2 * LINK_SIZE + self._zfill] = mv[0]  # the piece's length, after the links
        self._h.update(mv[:n])
        self._zfill += n
        if not self._zlen and self._zfill == 2:
            self._zlen = self._sig[2 * LINK_SIZE] | self._sig[2 * LINK_SIZE + 1] << 8
            self._zfill = 0
            if not 0 < self._zlen <= PIECE_MAX:
                raise ImageError("BAD_COMPRESSION", "piece length")
        return n

    def _piece(self):
        m = self.manifest
        want = min(PIECE_SIZE, m[M_OFFSET] + m[M_LENGTH] - self._fw)
        inf = self._inf
        inf.start()
        out = memoryview(inflate.out_buffer(_OUT))
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
        if self._lnk != -2:
            code = "BAD_COMPRESSION" if self._inf is not None else "BAD_CHAIN"
            raise ImageError(code, "mid-chunk")
        self._inf = None
        self._goto(_ST_END, 0, 0)
