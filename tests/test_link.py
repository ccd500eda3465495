"""otaclient.link: golden frames, round trips, resync after garbage, limits, fuzzing."""

import random
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from otaclient import link

# src 0x0001 -> dst 0x0000, seq 7, payload 01 00 02: body 01 00 00 00 07 01 00 02 + crc16
GOLDEN_SHORT = bytes.fromhex("02010101030701040255ec00")
GOLDEN_EMPTY = bytes.fromhex("0834127856fff85a00")


def _crc16(body: bytes) -> bytes:
    return (zlib.crc32(body) & 0xFFFF).to_bytes(2, "little")


def test_golden_frame_bytes_match_the_documented_layout():
    body = bytes.fromhex("0100000007010002")
    assert _crc16(body) == bytes.fromhex("55ec")
    assert link.encode(0x0001, 0x0000, 7, b"\x01\x00\x02") == GOLDEN_SHORT


def test_golden_empty_payload_frame():
    assert link.encode(0x1234, 0x5678, 0xFF, b"") == GOLDEN_EMPTY
    d = link.Decoder()
    d.feed(GOLDEN_EMPTY)
    assert d.next() == (0x1234, 0x5678, 0xFF, b"")


def test_overhead_is_9_or_10_bytes_for_a_255_byte_block_response():
    data = bytes(range(1, 128)) + b"\x00" + bytes(range(128, 255))  # one zero in 255 bytes
    block_rsp = bytes(17) + data  # 272 bytes of ZCL, zeros in the header
    assert len(link.encode(0, 1, 0, block_rsp)) - len(block_rsp) == 9
    no_zero = bytes([0x5A]) * 272  # a 254-byte run costs one more code byte
    assert len(link.encode(0x0101, 0x0101, 1, no_zero)) - len(no_zero) == link.OVERHEAD


@pytest.mark.parametrize("n", [0, 1, 248, 249, 250, 253, 254, 255, 300, link.MAX_PAYLOAD])
@pytest.mark.parametrize("fill", [0x00, 0x01, 0xFF])
def test_round_trip_at_cobs_block_edges(n, fill):
    payload = bytes([fill]) * n
    frame = link.encode(0xFFF7, 0x0000, 200, payload)
    assert frame.count(0) == 1 and frame[-1] == 0
    d = link.Decoder()
    d.feed(frame)
    assert d.next() == (0xFFF7, 0x0000, 200, payload)
    assert d.next() is None


def test_oversize_payload_and_bad_fields_are_refused_by_encode():
    with pytest.raises(link.LinkError) as e:
        link.encode(0, 0, 0, bytes(link.MAX_PAYLOAD + 1))
    assert e.value.code == "OVERSIZE"
    for args in ((0x10000, 0, 0), (0, -1, 0), (0, 0, 256)):
        with pytest.raises(link.LinkError):
            link.encode(*args, b"")


def test_frames_split_at_every_byte_boundary_decode_once():
    frames = [link.encode(1, 0, i, bytes([i]) * (i * 37 % 300)) for i in range(5)]
    stream = b"".join(frames)
    for cut in range(len(stream) + 1):
        d = link.Decoder()
        got = []
        for part in (stream[:cut], stream[cut:]):
            d.feed(part)
            while (f := d.next()) is not None:
                got.append(f[2])
        assert got == [0, 1, 2, 3, 4], cut
        assert sum(d.errors.values()) == 0


def test_garbage_bad_crc_and_truncation_are_counted_and_skipped():
    good = link.encode(1, 0, 9, b"payload")
    bad_crc = bytearray(good)
    bad_crc[good.index(b"payload")] ^= 0x40
    truncated = good[:-4] + b"\x00"
    d = link.Decoder()
    d.feed(b"\x00\x00noise" + b"\x00" + bytes(bad_crc) + truncated + b"\x05ab\x00" + good)
    assert d.next() == (1, 0, 9, b"payload")
    assert d.next() is None
    assert d.errors["crc"] >= 1
    assert d.errors["short"] >= 2
    assert d.frames == 1


def test_oversize_frame_is_dropped_and_the_next_frame_survives():
    d = link.Decoder()
    d.feed(b"\x07" * 400)  # longer than any frame, no delimiter yet
    assert d.next() is None
    d.feed(b"\x07" * 400 + b"\x00" + link.encode(2, 0, 1, b"ok"))
    assert d.next() == (2, 0, 1, b"ok")
    assert d.errors["oversize"] == 1
    d.feed(b"\x07" * 400 + b"\x00")  # all in one chunk
    assert d.next() is None
    assert d.errors["oversize"] == 2


def test_feeding_twice_without_draining_keeps_both():
    d = link.Decoder()
    d.feed(link.encode(1, 0, 1, b"a"))
    d.feed(link.encode(1, 0, 2, b"b"))
    assert [d.next()[2], d.next()[2], d.next()] == [1, 2, None]


def test_memoryview_and_bytearray_input_are_accepted():
    frame = link.encode(3, 4, 5, b"xyz")
    for data in (bytearray(frame), memoryview(frame)):
        d = link.Decoder()
        d.feed(data)
        assert d.next() == (3, 4, 5, b"xyz")


def test_single_bit_errors_are_always_detected():
    frame = link.encode(1, 0, 3, bytes(range(256)) + bytes(20))
    rng = random.Random(1)
    for _ in range(300):
        bad = bytearray(frame)
        bit = rng.randrange((len(frame) - 1) * 8)
        bad[bit // 8] ^= 1 << (bit % 8)
        d = link.Decoder()
        d.feed(bytes(bad) + b"\x00")
        assert d.next() is None, bit


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFF),
    st.integers(0, 255),
    st.binary(max_size=link.MAX_PAYLOAD),
)
def test_round_trip_property(src, dst, seq, payload):
    d = link.Decoder()
    d.feed(link.encode(src, dst, seq, payload))
    assert d.next() == (src, dst, seq, payload)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.binary(max_size=700), max_size=6))
def test_decoder_never_raises_on_junk_and_recovers(chunks):
    d = link.Decoder()
    for c in chunks:
        d.feed(c)
        while d.next() is not None:
            pass
    d.feed(b"\x00" + link.encode(1, 2, 3, b"after junk"))
    got = []
    while (f := d.next()) is not None:
        got.append(f)
    assert got[-1] == (1, 2, 3, b"after junk")


def test_feed_with_a_length_uses_only_that_prefix_of_a_reused_buffer():
    frame = link.encode(5, 6, 7, b"abc")
    buf = bytearray(64)
    d = link.Decoder()
    got = []
    for i in range(0, len(frame), 4):  # readinto-style: same buffer, n bytes valid
        part = frame[i : i + 4]
        buf[: len(part)] = part
        buf[len(part) :] = b"\x00" * (64 - len(part))  # stale zeros must be ignored
        d.feed(buf, len(part))
        while (f := d.next()) is not None:
            got.append(f)
    assert got == [(5, 6, 7, b"abc")]
    assert sum(d.errors.values()) == 0


def test_next_view_gives_a_memoryview_into_the_decoder_valid_until_the_next_frame():
    wire = link.encode(1, 2, 3, b"first") + link.encode(1, 2, 4, b"second")
    d = link.Decoder()
    d.feed(bytearray(wire), len(wire))
    src, dst, seq, p = d.next(True)
    assert (src, dst, seq) == (1, 2, 3) and isinstance(p, memoryview) and p == b"first"
    kept = bytes(p)
    assert d.next(True)[3] == b"second" and kept == b"first"
    d.feed(wire)
    assert [type(f[3]) for f in (d.next(), d.next())] == [bytes, bytes]  # host callers
