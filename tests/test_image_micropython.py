"""The same Verifier under the real MicroPython unix port with a 64 KB heap."""

import hashlib
import os
import struct
import zlib

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hanota.image import build, keys
from mpy import check_mpy
from otaclient import imagefmt as image_fmt

pytestmark = pytest.mark.micropython

KEY = ec.generate_private_key(ec.SECP256R1())
PUB = keys.raw_public(KEY.public_key())
TARGET = build.Target(0x1234, 0x0084, 0x01020304, 0x0100, 0x01FF)

STREAM = """
import hashlib, binascii, gc, time
from otaclient import image, imagefmt, imagepack
image.prepare()
pub = binascii.unhexlify({pub!r})
trust = {{imagefmt.key_id(pub): pub}}
BLOCK = {block}

def stream(path, h, pos):
    def sink(off, mv):
        assert off == pos[0], (off, pos[0])
        h.update(mv)
        pos[0] = off + len(mv)
    v = image.Verifier(trust.get, sink, imagepack.make_check(0x1234, 0x0084, 0x0100))
    buf = bytearray(BLOCK)
    peak = 0
    n = 0
    with open(path, "rb") as f:
        while True:
            k = f.readinto(buf)
            if not k:
                break
            v.feed(memoryview(buf)[:k])
            n += 1
            if n % (16384 // BLOCK or 1) == 0:
                gc.collect()
                peak = max(peak, gc.mem_alloc() - base)
    m = v.finish()
    return peak

gc.collect()
base = gc.mem_alloc()
h = hashlib.sha256()
pos = [0]
peak = 0
t0 = time.ticks_ms()
for path in {paths!r}:
    peak = max(peak, stream(path, h, pos))
dt = time.ticks_diff(time.ticks_ms(), t0)
print("digest", binascii.hexlify(h.digest()).decode())
print("length", pos[0])
print("peak", peak)
print("ms", dt)
"""


def stream_under_mpy(tmp_path, files, block=64):
    paths = []
    for name, data in files:
        (tmp_path / name).write_bytes(data)
        paths.append(str(tmp_path / name))
    out = check_mpy(STREAM.format(pub=PUB.hex(), block=block, paths=paths), timeout=300)
    return dict(line.split() for line in out.splitlines())


def test_fragmented_two_megabytes_stream_in_64_byte_blocks_with_64k_heap(tmp_path):
    payload = os.urandom(2 * 1024 * 1024)
    files = build.build(payload, TARGET, KEY)
    assert len(files) == 3
    res = stream_under_mpy(tmp_path, files)
    assert res["digest"] == hashlib.sha256(payload).hexdigest()
    assert int(res["length"]) == len(payload)
    assert int(res["peak"]) < 16 * 1024, res


def test_compressed_image_decodes_with_deflate_module_in_bounded_memory(tmp_path):
    payload = bytes(range(256)) * 1500 + os.urandom(20000) + bytes(300000)
    files = build.build(payload, TARGET, KEY, compress=True, max_size=12000)
    assert len(files) >= 2
    res = stream_under_mpy(tmp_path, files, block=255)
    assert res["digest"] == hashlib.sha256(payload).hexdigest()
    assert int(res["length"]) == len(payload)
    assert int(res["peak"]) < 20 * 1024, res


BAD = """
from otaclient import image, imagefmt, imagepack
import binascii
image.prepare()
pub = binascii.unhexlify({pub!r})
trust = {{imagefmt.key_id(pub): pub}}
buf = bytearray(64)
for path in {paths!r}:
    v = image.Verifier(trust.get, lambda off, mv: None, imagepack.make_check(0x1234, 0x0084, 0x0100))
    try:
        with open(path, "rb") as f:
            while True:
                n = f.readinto(buf)
                if not n:
                    break
                v.feed(memoryview(buf)[:n])
        v.finish()
        print(path, "OK")
    except image.ImageError as e:
        print(path, e.code)
"""


def test_bad_files_get_the_same_codes_under_micropython(tmp_path, monkeypatch):
    good = build.build(os.urandom(5000), TARGET, KEY)[0][1]
    other = build.build(os.urandom(5000), TARGET, ec.generate_private_key(ec.SECP256R1()))[0][1]
    wrong_type = build.build(os.urandom(500), build.Target(0x1234, 0x85, 1, 0, 0xFFFF), KEY)[0][1]
    comp = _with_first_piece(monkeypatch, bytes(9000), lambda sector: b"\xff" * 8)
    cases = {
        "good": (good, "OK"),
        "magic": (good[:1] + b"\x00" + good[2:], "BAD_MAGIC"),
        "hlen": (good[:6] + struct.pack("<H", 61) + good[8:], "BAD_HEADER_LENGTH"),
        "trunc": (good[:-1], "TRUNCATED"),
        "junk": (good + b"!", "TRAILING_DATA"),
        "key": (other, "UNKNOWN_KEY"),
        "type": (wrong_type, "WRONG_IMAGE_TYPE"),
        "sig": (good[:30] + bytes([good[30] ^ 4]) + good[31:], "INVALID_SIGNATURE"),
        "flip": (good[:3000] + bytes([good[3000] ^ 4]) + good[3001:], "BAD_CHAIN"),
        "head_junk": (good[:220] + os.urandom(len(good) - 220), "BAD_CHAIN"),
        "comp": (comp, "BAD_COMPRESSION"),  # chained and signed, but not deflate
    }
    out = stream_codes(tmp_path, cases)
    assert out == {k: v[1] for k, v in cases.items()}


def stream_codes(tmp_path, cases):
    paths = []
    for name, (data, _) in cases.items():
        (tmp_path / name).write_bytes(data)
        paths.append(str(tmp_path / name))
    out = check_mpy(BAD.format(pub=PUB.hex(), paths=paths))
    return {os.path.basename(p): code for p, code in (line.split() for line in out.splitlines())}


def test_throughput_and_heap_figures_under_micropython(tmp_path):
    """Not a bar (that is `make bench`): just prints the figures for the record."""
    payload = os.urandom(700000)
    files = build.build(payload, TARGET, KEY)
    res = stream_under_mpy(tmp_path, files, block=4096)
    mbps = len(payload) / (int(res["ms"]) / 1000) / 1e6
    print(f"micropython verifier: {mbps:.1f} MB/s with 4 KB blocks, peak heap {res['peak']} B")
    assert res["digest"] == hashlib.sha256(payload).hexdigest()


def _with_first_piece(monkeypatch, payload, make):
    # a compressed file whose first piece is make(sector) (length prefix added here)
    real = build.pieces

    def pieces(data, compress):
        out = real(data, compress)
        z = make(data[: image_fmt.PIECE_SIZE])
        return [len(z).to_bytes(2, "little") + z] + out[1:]

    monkeypatch.setattr(build, "pieces", pieces)
    try:
        return build.build(payload, TARGET, KEY, compress=True)[0][1]
    finally:
        monkeypatch.setattr(build, "pieces", real)


def test_bad_pieces_cost_a_new_decoder_and_the_next_file_decodes(tmp_path, monkeypatch):
    # one DeflateIO serves every piece (otaclient.inflate): a piece ending in a final block
    # (the old layout) or decoding too long must be refused, and the file after it decode
    payload = bytes(range(256)) * 40

    def final(sector):
        c = zlib.compressobj(9, zlib.DEFLATED, -image_fmt.WBITS)
        return c.compress(sector) + c.flush()

    def long(sector):
        c = zlib.compressobj(9, zlib.DEFLATED, -image_fmt.WBITS)
        return c.compress(sector + b"12345") + c.flush(zlib.Z_FULL_FLUSH)

    good = build.build(payload, TARGET, KEY, compress=True)[0][1]
    cases = {
        "good1": (good, "OK"),
        "final": (_with_first_piece(monkeypatch, payload, final), "BAD_COMPRESSION"),
        "good2": (good, "OK"),
        "long": (_with_first_piece(monkeypatch, payload, long), "BAD_COMPRESSION"),
        "good3": (good, "OK"),
    }
    assert stream_codes(tmp_path, cases) == {k: v[1] for k, v in cases.items()}


def test_a_sink_error_mid_piece_leaves_the_next_file_decodable(tmp_path):
    payload = os.urandom(3000) + bytes(6000)
    path = tmp_path / "c.ota"
    path.write_bytes(build.build(payload, TARGET, KEY, compress=True)[0][1])
    out = check_mpy(
        SINK_ERROR.format(pub=PUB.hex(), path=str(path)),
    )
    assert out.split() == ["raised", "ok", hashlib.sha256(payload).hexdigest()]


SINK_ERROR = """
from otaclient import image, imagefmt
import binascii, hashlib
image.prepare()
pub = binascii.unhexlify({pub!r})
trust = {{imagefmt.key_id(pub): pub}}
data = open({path!r}, "rb").read()
def bad(off, mv):
    if off >= 100:
        raise OSError(5)  # the flash failed half-way through a piece
v = image.Verifier(trust.get, bad)
try:
    v.feed(data)
except OSError:
    print("raised")
h = hashlib.sha256()
v = image.Verifier(trust.get, lambda off, mv: h.update(mv))
v.feed(data)
v.finish()
print("ok", binascii.hexlify(h.digest()).decode())
"""


def test_release_lets_the_decoder_go_and_a_later_piece_takes_a_new_one(tmp_path):
    """inflate.release() (activation, before the reset) frees the decoder's state and
    window; a compressed file after it still decodes (a new decoder, taken lazily)."""
    payload = os.urandom(3000) + bytes(6000)
    path = tmp_path / "c.ota"
    path.write_bytes(build.build(payload, TARGET, KEY, compress=True)[0][1])
    out = check_mpy(RELEASE.format(pub=PUB.hex(), path=str(path))).split()
    assert out[0] == "freed" and int(out[1]) >= 2048, out  # state ~1.3 KB + the 1 KB window
    assert out[2:] == ["ok", hashlib.sha256(payload).hexdigest()]


RELEASE = """
from otaclient import image, imagefmt, inflate
import binascii, gc, hashlib
image.prepare()
pub = binascii.unhexlify({pub!r})
trust = {{imagefmt.key_id(pub): pub}}
data = open({path!r}, "rb").read()
gc.collect()
before = gc.mem_alloc()
inflate.release()
gc.collect()
print("freed", before - gc.mem_alloc())
h = hashlib.sha256()
v = image.Verifier(trust.get, lambda off, mv: h.update(mv))
v.feed(data)
v.finish()
print("ok", binascii.hexlify(h.digest()).decode())
"""
