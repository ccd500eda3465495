"""Delta payloads: a patch stream from a base firmware to a target, its descriptor, and a
host-side applier (the reference the board's otaclient.delta is tested against).

The diff itself is bsdiff4's (suffix sorting, approximate matches); this module only
re-encodes its control/diff/extra blocks as one stream a board applies as it arrives.
It does not sign or chunk (build.py does) and does not talk to a board.
"""

from __future__ import annotations

import hashlib
import re
import struct
from dataclasses import dataclass

from ..output import CommandError

MAGIC = b"HNDP"
VERSION = 1
ALG_BSDIFF = 1  # ops COPY / ADD (mod 256 to the base) / INSERT / SEEK, from a bsdiff diff
ALGORITHMS = {ALG_BSDIFF: "bsdiff-ops"}
OP_COPY, OP_ADD, OP_INSERT, OP_SEEK = 0, 1, 2, 3  # an op: varint (n << 2 | kind)
MIN_RUN = 4  # zero bytes of a diff block that become a COPY op (docs/image-format.md)
_DESC = struct.Struct("<4sBBHII32sI32sI")  # 88 bytes
DESC_SIZE = _DESC.size


@dataclass(frozen=True)
class Descriptor:
    """What a delta payload was made from and makes: the first DESC_SIZE bytes of it."""

    algorithm: int
    base_version: int
    base_length: int
    base_sha256: bytes
    target_length: int
    target_sha256: bytes

    def pack(self) -> bytes:
        return _DESC.pack(MAGIC, VERSION, self.algorithm, DESC_SIZE, self.base_version,
                          self.base_length, self.base_sha256, self.target_length,
                          self.target_sha256, 0)  # fmt: skip

    def json(self) -> dict:
        return {
            "algorithm": ALGORITHMS.get(self.algorithm, str(self.algorithm)),
            "base_version": self.base_version,
            "base_length": self.base_length,
            "base_sha256": self.base_sha256.hex(),
            "target_length": self.target_length,
            "target_sha256": self.target_sha256.hex(),
        }


class DeltaError(CommandError):
    """A delta payload that is malformed, or for another base, or that makes the wrong bytes."""


def parse_descriptor(patch: bytes) -> Descriptor:
    if len(patch) < DESC_SIZE:
        raise DeltaError("delta: shorter than its descriptor")
    magic, ver, alg, size, bver, blen, bsha, tlen, tsha, _ = _DESC.unpack_from(patch)
    if magic != MAGIC or ver != VERSION or size != DESC_SIZE or alg not in ALGORITHMS:
        raise DeltaError(f"delta: bad descriptor (magic {magic!r} version {ver} algorithm {alg})")
    if not blen or not tlen:
        raise DeltaError("delta: an empty base or target")
    return Descriptor(alg, bver, blen, bsha, tlen, tsha)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _zigzag(n: int) -> int:
    return n * 2 if n >= 0 else -n * 2 - 1


def encode(base: bytes, target: bytes, min_run: int = MIN_RUN) -> bytes:
    """The patch ops (no descriptor) from bsdiff4's diff of base -> target: each bsdiff
    record's diff block as COPY runs (its zero runs) and ADD runs, then INSERT (its extra
    block), then SEEK."""
    import bsdiff4.core

    control, diff, extra = bsdiff4.core.diff(base, target)
    zeros = re.compile(rb"\x00{%d,}" % min_run)
    out = bytearray()
    d = e = 0
    for i in range(0, len(control), 24):
        n_diff, n_extra, seek = (
            bsdiff4.core.decode_int64(control[j : j + 8]) for j in range(i, i + 24, 8)
        )
        block = diff[d : d + n_diff]
        at = 0
        for m in zeros.finditer(block):
            if m.start() > at:
                out += _varint((m.start() - at) << 2 | OP_ADD) + block[at : m.start()]
            out += _varint((m.end() - m.start()) << 2 | OP_COPY)
            at = m.end()
        if at < n_diff:
            out += _varint((n_diff - at) << 2 | OP_ADD) + block[at:]
        if n_extra:
            out += _varint(n_extra << 2 | OP_INSERT) + extra[e : e + n_extra]
        if seek:
            out += _varint(_zigzag(seek) << 2 | OP_SEEK)
        d += n_diff
        e += n_extra
    return bytes(out)


def make(base: bytes, target: bytes, base_version: int) -> bytes:
    """A whole delta payload: descriptor, then the records."""
    if not base or not target:
        raise DeltaError("delta: base and target must not be empty")
    desc = Descriptor(ALG_BSDIFF, base_version, len(base), hashlib.sha256(base).digest(),
                      len(target), hashlib.sha256(target).digest())  # fmt: skip
    return desc.pack() + encode(base, target)


def _read_varint(patch: bytes, pos: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        if pos >= len(patch) or shift > 28:
            raise DeltaError(f"delta: bad varint at {pos}")
        b = patch[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, pos


def apply(base: bytes, patch: bytes, check_target: bool = True) -> bytes:
    """The target the patch makes from `base`; DeltaError for another base, a malformed
    patch (an op of no bytes included), or a result whose length or (unless check_target
    is False) SHA-256 is not the descriptor's."""
    desc = parse_descriptor(patch)
    if len(base) != desc.base_length or hashlib.sha256(base).digest() != desc.base_sha256:
        raise DeltaError("delta: made for another base (length or SHA-256 differs)")
    out = bytearray()
    pos, old = DESC_SIZE, 0
    while pos < len(patch):
        at = pos
        v, pos = _read_varint(patch, pos)
        kind, n = v & 3, v >> 2
        if kind == OP_SEEK:
            old += -(n + 1) // 2 if n & 1 else n // 2
            continue
        if not n or len(out) + n > desc.target_length or (kind != OP_COPY and pos + n > len(patch)):
            raise DeltaError(f"delta: op at {at} runs past the patch or the target")
        if kind == OP_INSERT:
            out += patch[pos : pos + n]
            pos += n
            continue
        if old < 0 or old + n > len(base):
            raise DeltaError(f"delta: op at {at} reads outside the base")
        if kind == OP_COPY:
            out += base[old : old + n]
        else:
            out += bytes(
                (a + b) & 0xFF
                for a, b in zip(base[old : old + n], patch[pos : pos + n], strict=True)
            )
            pos += n
        old += n
    if len(out) != desc.target_length or (
        check_target and hashlib.sha256(out).digest() != desc.target_sha256
    ):
        raise DeltaError("delta: result differs from the target (length or SHA-256)")
    return bytes(out)


def payload_for(base: bytes, target: bytes, base_version: int | None) -> bytes:
    """`hanota image build --base`: the delta payload; the base's version from a sim app's
    header when not given."""
    if base_version is None:
        from ..sim import appimage

        try:
            base_version = appimage.parse_header(base).version
        except appimage.AppError:
            raise DeltaError("--base-version is needed: the base is not a sim app") from None
    if not 0 <= base_version <= 0xFFFFFFFF:
        raise DeltaError("--base-version must fit in 32 bits")
    return make(base, target, base_version)


def first_bytes(data: bytes, payload_at: int, compressed: bool) -> bytes:
    """The first firmware bytes of a file's payload (its first chunk's data), unverified:
    what `image inspect` reads a delta's descriptor from."""
    import zlib

    from otaclient import image

    if not compressed:
        return data[payload_at : payload_at + image.CHUNK_SIZE]
    n = int.from_bytes(data[payload_at : payload_at + 2], "little")
    try:
        return zlib.decompressobj(-image.WBITS).decompress(
            data[payload_at + 2 : payload_at + 2 + n]
        )
    except zlib.error:
        return b""
