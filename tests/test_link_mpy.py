"""otaclient.link under the real MicroPython (64 KB heap): golden frames, resync, speed."""

import pytest
from mpy import check_mpy
from otaclient import link

# the device build folds link's constants into the modules that use them (hanota.constfold):
# a script reads them from the source, as the host does

pytestmark = pytest.mark.micropython

_SETUP = """
from otaclient import link
from binascii import unhexlify
def frames(d):
    out = []
    while True:
        f = d.next()
        if f is None:
            return out
        out.append(f)
"""


def test_golden_frames_and_round_trips_under_micropython():
    check_mpy(
        _SETUP
        + f"MAX_PAYLOAD = {link.MAX_PAYLOAD}\n"
        + """
assert link.encode(1, 0, 7, b"\\x01\\x00\\x02") == unhexlify("02010101030701040255ec00")
assert link.encode(0x1234, 0x5678, 255, b"") == unhexlify("0834127856fff85a00")
d = link.Decoder()
for n in (0, 1, 253, 254, 255, 300, MAX_PAYLOAD):
    for fill in (0, 1, 255):
        p = bytes([fill]) * n
        d.feed(link.encode(0xFFF7, 0, n & 0xFF, p))
        assert frames(d) == [(0xFFF7, 0, n & 0xFF, p)], (n, fill)
assert d.errors == {"crc": 0, "oversize": 0, "short": 0}
buf = bytearray(16)
f = link.encode(5, 6, 7, b"abc")
got = []
for i in range(0, len(f), 4):
    part = f[i : i + 4]
    buf[: len(part)] = part
    d.feed(buf, len(part))
    got += frames(d)
assert got == [(5, 6, 7, b"abc")], got
"""
    )


def test_resync_after_garbage_under_micropython():
    check_mpy(
        _SETUP
        + """
good = link.encode(1, 0, 9, b"payload")
bad = bytearray(good)
bad[good.find(b"payload")] ^= 0x40
d = link.Decoder()
d.feed(b"noise\\x00" + bytes(bad) + good[:-4] + b"\\x00" + b"\\x07" * 400)
assert frames(d) == []
d.feed(b"\\x00" + good[:5])
assert frames(d) == []
d.feed(good[5:])
assert frames(d) == [(1, 0, 9, b"payload")]
assert d.errors["crc"] == 1 and d.errors["short"] == 2 and d.errors["oversize"] == 1, d.errors
"""
    )


def test_decode_throughput_under_micropython(record_property):
    out = check_mpy(
        _SETUP
        + """
import time
d = link.Decoder()
data = bytes(range(1, 128)) + b"\\x00" + bytes(range(128, 255))
for name, p in (("block", bytes(17) + data), ("zeros", bytes(272))):
    wire = link.encode(0, 1, 5, p) * 40
    t0 = time.ticks_us()
    n = 0
    for _ in range(25):
        d.feed(wire)
        n += len(frames(d))
    dt = time.ticks_diff(time.ticks_us(), t0) / 1e6
    assert n == 1000
    print(name, 25 * len(wire) / dt / 1e6)
"""
    )
    rates = {k: float(v) for k, v in (line.split() for line in out.split("\n") if line)}
    record_property("decode_mb_s", rates)
    print("micropython link decode MB/s (wire bytes):", rates)
    assert rates["block"] >= 2.0, rates  # QUALITY.md ingest goal on the unix port
