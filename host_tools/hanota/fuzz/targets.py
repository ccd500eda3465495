"""The fuzz targets: one function per target, each taking the fuzzer's bytes.

A target returns normally when the code under test behaved: it raised nothing, or only
its own error type, and every invariant held. Anything else escapes as a finding
(InvariantError for a broken invariant, or the unexpected exception itself).
Chunking is derived from the input (a PRNG seeded by its CRC), so every run replays.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from otaclient import image, link, zcl

from hanota.fuzz import deltafuzz, fixtures, scenario
from hanota.fuzz.chunking import chunks, rng_for
from hanota.fuzz.fakeport import InvariantError

Target = Callable[[bytes], None]


# --- link_decoder -------------------------------------------------------------------------


def _drain(dec: link.Decoder, out: list[tuple]) -> None:
    while (frame := dec.next()) is not None:
        out.append(frame)


def _decode_whole(data: bytes) -> tuple[list[tuple], dict, int]:
    dec = link.Decoder()
    frames: list[tuple] = []
    dec.feed(data)
    _drain(dec, frames)
    return frames, dict(dec.errors), dec.frames


def _decode_chunked(data: bytes, rng: random.Random) -> tuple[list[tuple], dict, int]:
    # feed(bytes), feed(reused readinto buffer, n), feed(memoryview); sometimes two
    # feeds of fresh bytes before draining (allowed: the decoder copies then)
    dec = link.Decoder()
    frames: list[tuple] = []
    buf = bytearray(400)
    undrained = False
    for chunk in chunks(data, rng):
        how = rng.randrange(4)
        if how == 1 and not undrained:
            buf[: len(chunk)] = chunk
            dec.feed(buf, len(chunk))
        elif how == 2 and not undrained:
            dec.feed(memoryview(chunk))
        else:
            dec.feed(bytes(chunk))
        undrained = how == 3 and not undrained
        if not undrained:
            _drain(dec, frames)
    _drain(dec, frames)
    return frames, dict(dec.errors), dec.frames


def _check_frame(frame: tuple) -> None:
    src, dst, seq, payload = frame
    if not (0 <= src <= 0xFFFF and 0 <= dst <= 0xFFFF and 0 <= seq <= 0xFF):
        raise InvariantError(f"frame fields out of range: {frame!r}")
    if type(payload) is not bytes or len(payload) > link.MAX_PAYLOAD:
        raise InvariantError(f"payload {type(payload).__name__} of {len(payload)} bytes")
    again = _decode_whole(link.encode(src, dst, seq, payload))[0]
    if again != [frame]:
        raise InvariantError(f"re-encoded frame decodes to {again!r}, not {frame!r}")


def link_decoder(data: bytes) -> None:
    """Decoder.feed/next never raise; any chunking gives the same frames and counters;
    every frame re-encodes to bytes that decode to the same frame."""
    whole = _decode_whole(data)
    chunked = _decode_chunked(data, rng_for(data))
    if chunked != whole:
        raise InvariantError(f"chunked decode {chunked!r} != whole decode {whole!r}")
    if whole[2] != len(whole[0]):
        raise InvariantError(f"frames counter {whole[2]} != {len(whole[0])} frames")
    for frame in whole[0]:
        _check_frame(frame)


# --- zcl_decoder --------------------------------------------------------------------------


def _round_trip(obj: tuple, seq: int, s2c: bool) -> None:
    try:
        frame = zcl.encode_command(obj, seq, s2c)
    except zcl.ZclError as e:
        raise InvariantError(f"decoded {obj!r} but the encoder refuses it: {e.code}") from e
    cmd, seq2, s2c2, mfr, payload = zcl.decode_frame(frame)
    again = zcl.decode_command(cmd, payload, s2c2, mfr)
    if (again, seq2, s2c2) != (obj, seq, s2c):
        raise InvariantError(f"round trip {obj!r} -> {frame.hex()} -> {again!r}")


def zcl_decoder(data: bytes) -> None:
    """decode_frame + decode_command raise only ZclError; what decodes re-encodes to
    the same command. Also every command id with data[1:] as payload, both directions,
    with and without our manufacturer code."""
    try:
        cmd, seq, s2c, mfr, payload = zcl.decode_frame(data)
        obj = zcl.decode_command(cmd, payload, s2c, mfr)
    except zcl.ZclError:
        pass
    else:
        _round_trip(obj, seq, s2c)
    if not data:
        return
    for s2c in (False, True):
        for mfr in (None, zcl.MFR_HANOTA, data[0] | 0x100):
            try:
                zcl.decode_command(data[0], data[1:], s2c, mfr)
            except zcl.ZclError:
                pass


# --- image_parser -------------------------------------------------------------------------


class _Sink:
    """Checks the verifier's calls: check() first, then contiguous bytes inside the
    fragment, each only once the head is authenticated and each the signed firmware's."""

    def __init__(self) -> None:
        self.verifier: image.Verifier | None = None
        self.manifest: image.Manifest | None = None
        self.next = 0
        self.out = bytearray()

    def check(self, header: image.Header, m: image.Manifest) -> None:
        if self.manifest is not None:
            raise InvariantError("check() called twice")
        self.manifest = m
        self.next = m.fragment_offset

    def sink(self, off: int, mv: memoryview) -> None:
        m = self.manifest
        if m is None:
            raise InvariantError(f"sink({off}) before check()")
        end = m.fragment_offset + m.fragment_length
        if off != self.next or off + len(mv) > end:
            raise InvariantError(
                f"sink({off}, {len(mv)}): expected {self.next}, fragment end {end}"
            )
        v = self.verifier
        if v is None or not v.authenticated:
            raise InvariantError(f"sink({off}) before the head was authenticated")
        known = fixtures.known_signed().get(v.digest)
        if known is None or bytes(mv) != known.firmware[off : off + len(mv)]:
            raise InvariantError(f"sink({off}, {len(mv)}): bytes the fixture key never signed")
        self.out += mv
        self.next = off + len(mv)


def image_parser(data: bytes) -> None:
    """The streaming Verifier (fixture key trusted) raises only ImageError, in any
    chunking; a file passes finish() only if its signed bytes are a fixture's, and
    then the sink got exactly that fragment's firmware bytes."""
    s = _Sink()
    v = s.verifier = image.Verifier(fixtures.lookup_key, s.sink, s.check)
    try:
        for chunk in chunks(data, rng_for(data)):
            v.feed(chunk)
        m = v.finish()
    except image.ImageError:
        try:
            v.finish()
        except image.ImageError:
            return
        raise InvariantError("finish() passed after an ImageError") from None
    known = fixtures.known_signed().get(v.digest)
    if known is None:
        raise InvariantError(f"finish() passed an unknown file of {len(data)} bytes")
    want = known.firmware[m.fragment_offset : m.fragment_offset + m.fragment_length]
    if bytes(s.out) != want:
        raise InvariantError(f"sink got {len(s.out)} bytes, not fragment {m.fragment_index}'s")


# --- reassembly ---------------------------------------------------------------------------


def reassembly(data: bytes) -> None:
    """A script of fragment deliveries (good, mutated, truncated, arbitrary, reboots)
    through Verifier + Reassembly over a strict in-memory port; see scenario.py."""
    scenario.run(data)


def link_feed_n(data: bytes) -> None:
    """Replay-only (not fuzzed): records of [length u8][extra u8][length bytes] fed as
    feed(chunk, length + extra). The contract says data[:n], so n beyond the data must
    act as the whole chunk: same frames as feeding the chunks plainly."""
    dec, plain = link.Decoder(), link.Decoder()
    got: list[tuple] = []
    want: list[tuple] = []
    i = 0
    while i + 2 <= len(data):
        n, extra = data[i], data[i + 1]
        chunk = data[i + 2 : i + 2 + n]
        i += 2 + n
        dec.feed(chunk, len(chunk) + extra)
        _drain(dec, got)
        plain.feed(chunk)
        _drain(plain, want)
    if got != want:
        raise InvariantError(f"feed(data, n > len(data)) gave {got!r}, not {want!r}")


TARGETS: dict[str, Target] = {
    "link_decoder": link_decoder,
    "zcl_decoder": zcl_decoder,
    "image_parser": image_parser,
    "reassembly": reassembly,
    "delta_applier": deltafuzz.delta_applier,
}
# regression replays only: inputs outside the fuzzed contract (see docs/fuzzing.md)
REPLAY_ONLY: dict[str, Target] = {"link_feed_n": link_feed_n}
# libFuzzer -max_len per target (the largest seed is used if it is bigger)
MAX_LEN = {"link_decoder": 4096, "zcl_decoder": 512, "image_parser": 8192, "reassembly": 4096,
           "delta_applier": 4096}  # fmt: skip
