"""The device-side streaming Verifier: good files, every file-level bad input, fuzzing."""

import hashlib
import os
import struct

import pytest
from badinput_util import KEY, SIG, SMALL, SMALL_FILE, make, patch
from badinput_util import manifest_edit as _manifest_edit
from cryptography.hazmat.primitives.asymmetric import ec
from hanota.image import build, keys
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from otaclient import image

OTHER = ec.generate_private_key(ec.SECP256R1())
SUPPLIER = ec.generate_private_key(ec.SECP256R1())
PUB = keys.raw_public(KEY.public_key())
TRUST = {image.key_id(PUB): PUB}
SUP = slice(image.SIGNED_END + 66, image.SIGNED_END + 130)  # a supplier signature


def run(data, chunk=64, check=None, trust=TRUST, max_size=image.MAX_FILE):
    """Stream data through a Verifier; return (manifest, firmware bytes by offset, verifier)."""
    out = {}

    def sink(off, mv):
        assert off not in out
        out[off] = bytes(mv)

    v = image.Verifier(trust.get, sink, check, max_size)
    for i in range(0, len(data), chunk):
        v.feed(data[i : i + chunk])
    m = v.finish()
    fw = b"".join(out[k] for k in sorted(out))
    return m, fw, v


def code_of(data, **kw):
    with pytest.raises(image.ImageError) as exc:
        run(data, **kw)
    assert str(exc.value).startswith(exc.value.code)
    return exc.value.code


@pytest.mark.parametrize("chunk", [1, 7, 64, 255, 100000])
def test_single_file_streams_in_any_chunking(chunk):
    m, fw, v = run(SMALL_FILE, chunk)
    assert fw == SMALL and m.total_length == len(SMALL) and m.fragment_count == 1
    assert m.firmware_sha256 == hashlib.sha256(SMALL).digest() and m.security_counter == 7
    assert v.signature == SMALL_FILE[SIG] and v.supplier_signature is None
    assert v.header.total_size == len(SMALL_FILE) and v.header.hw_min == 0x0100


def test_compressed_fragments_reassemble_and_land_on_sector_boundaries():
    payload = os.urandom(30000) + bytes(60000) + os.urandom(5000)
    files = make(payload, compress=True, max_size=20000)
    assert len(files) >= 2
    whole = {}
    for _, data in files:
        assert len(data) <= 20000
        m, fw, _ = run(data, 61)
        assert m.compressed and m.fragment_offset % image.PIECE_SIZE == 0
        whole[m.fragment_offset] = fw
    assert b"".join(whole[k] for k in sorted(whole)) == payload


def test_supplier_trailer_is_exposed_and_checks_out():
    data = make(SMALL, supplier_key=SUPPLIER)[0][1]
    _, fw, v = run(data)
    assert fw == SMALL and v.supplier_signature == data[SUP] and data[220:222] == b"\x00\x40"
    assert v.supplier_digest == hashlib.sha256(data[:220]).digest()
    assert len(data) == 286 + len(SMALL) + (len(SMALL) - 1) // 1024 * 16
    from otaclient import p256

    assert p256.verify(
        keys.raw_public(SUPPLIER.public_key()), v.supplier_digest, v.supplier_signature
    )


def test_two_megabytes_default_max_size_gives_three_fragments():
    files = make(os.urandom(2 * 1024 * 1024))
    assert len(files) >= 3 and all(len(d) <= 750000 for _, d in files)
    assert [n for n, _ in files][0] == "1234-0084-01020304-1-of-3.zigbee"


@pytest.mark.bad_input(
    "wrong-magic",
    "header-version",
    "header-length",
    "total-size",
    "truncated",
    "trailing-junk",
    "unknown-key",
)
def test_bad_inputs_each_get_their_specific_code():
    f = SMALL_FILE
    cases = {
        "BAD_MAGIC": patch(f, 0, "<I", 0x0BEEF11F),
        "BAD_HEADER_VERSION": patch(f, 4, "<H", 0x0200),
        "BAD_HEADER_LENGTH": patch(f, 6, "<H", 61),
        "BAD_FIELD_CONTROL": patch(f, 8, "<H", 0),
        "SIZE_MISMATCH": patch(f, 52, "<I", len(f) + 1),
        "TRUNCATED": f[:-1],
        "TRAILING_DATA": f + b"\x00",
        "BAD_MANIFEST": patch(f, 60, "<4s", b"XXXX"),
        "UNKNOWN_KEY": make(SMALL, key=OTHER)[0][1],
        "INVALID_SIGNATURE": f[:30] + bytes([f[30] ^ 0x80]) + f[31:],  # header string
        "BAD_CHAIN": f[:1000] + bytes([f[1000] ^ 0x80]) + f[1001:],
    }
    for code, data in cases.items():
        assert code_of(data) == code, code
    assert code_of(f[:30]) == "TRUNCATED"
    assert code_of(b"") == "TRUNCATED"


@pytest.mark.bad_input("oversized-fragment")
def test_oversized_file_is_too_large_before_its_payload():
    big = make(os.urandom(800000), max_size=900000)[0][1]
    v = image.Verifier(TRUST.get, lambda o, m: None)
    with pytest.raises(image.ImageError) as exc:
        v.feed(big[:60])
    assert exc.value.code == "TOO_LARGE"
    assert code_of(SMALL_FILE, max_size=len(SMALL_FILE) - 1) == "TOO_LARGE"


@pytest.mark.bad_input("wrong-mfr-or-type", "hw-version")
def test_target_checks_refuse_other_manufacturer_type_and_hardware():
    sunk = []
    for code, check in [
        ("WRONG_MANUFACTURER", image.make_check(0x1235, 0x0084, 0x0100)),
        ("WRONG_IMAGE_TYPE", image.make_check(0x1234, 0x0085, 0x0100)),
        ("HW_MISMATCH", image.make_check(0x1234, 0x0084, 0x0200)),
        ("HW_MISMATCH", image.make_check(0x1234, 0x0084, 0x00FF)),
    ]:
        v = image.Verifier(TRUST.get, lambda o, m: sunk.append(o), check)
        with pytest.raises(image.ImageError) as exc:
            v.feed(SMALL_FILE)
        assert exc.value.code == code
    assert not sunk  # refused before any payload byte
    run(SMALL_FILE, check=image.make_check(0x1234, 0x0084, 0x01FF))


@pytest.mark.bad_input("signature-other-image")
def test_valid_signature_over_a_different_image_is_refused():
    a = make(SMALL)[0][1]
    b = make(bytes(reversed(SMALL)))[0][1]
    assert code_of(b[: SIG.start] + a[SIG] + b[SIG.stop :]) == "INVALID_SIGNATURE"
    assert code_of(a[: SIG.stop] + b[SIG.stop :]) == "BAD_CHAIN"  # head of one, body of other


def test_no_payload_byte_reaches_the_sink_before_the_signature_or_unhashed():
    """The head's signature is checked before the first payload byte is taken, and a
    chunk goes to the sink only once whole and hashed: a bad chunk k leaves chunks < k."""
    sunk = []
    v = image.Verifier(TRUST.get, lambda o, mv: sunk.append((o, bytes(mv))))
    v.feed(SMALL_FILE[:220])
    assert v.head_id is not None and not sunk and not v.authenticated
    v.feed(SMALL_FILE[220 : 220 + 1024 + 15])  # chunk 0's data and all but 1 byte of its link
    assert v.authenticated and not sunk
    v.feed(SMALL_FILE[220 + 1039 : 220 + 1040])
    assert sunk == [(0, SMALL[:1024])]
    bad = bytearray(SMALL_FILE)
    bad[220 + 2 * 1040 + 5] ^= 1  # in chunk 2
    sunk.clear()
    v.reset(TRUST.get, lambda o, mv: sunk.append(o))
    with pytest.raises(image.ImageError, match="BAD_CHAIN"):
        v.feed(bytes(bad))
    assert sunk == [0, 1024]
    forged = bytearray(SMALL_FILE)
    forged[SIG.start + 3] ^= 1
    sunk.clear()
    v.reset(TRUST.get, lambda o, mv: sunk.append(o))
    with pytest.raises(image.ImageError, match="INVALID_SIGNATURE"):
        v.feed(bytes(forged))
    assert sunk == []


@pytest.mark.bad_input("offset-beyond-total")
def test_fragment_descriptor_defects_are_bad_fragment():
    f = SMALL_FILE
    assert code_of(_manifest_edit(f, 36, "<I", 4096)) == "BAD_FRAGMENT"  # offset beyond total
    assert code_of(_manifest_edit(f, 44, "<I", 100)) == "BAD_FRAGMENT"  # total < length
    assert code_of(_manifest_edit(f, 32, "<H", 1)) == "BAD_FRAGMENT"  # index 1 of 1
    assert code_of(_manifest_edit(f, 34, "<H", 0)) == "BAD_FRAGMENT"  # count 0
    assert code_of(_manifest_edit(f, 36, "<I", 10)) == "BAD_FRAGMENT"  # unaligned


def _first_piece(monkeypatch, payload, piece):
    # a signed, correctly chained compressed file whose first piece is piece(real piece)
    real = build.pieces
    monkeypatch.setattr(
        build, "pieces", lambda d, c: [piece(p) for p in real(d, c)[:1]] + real(d, c)[1:]
    )
    try:
        return make(payload, compress=True)[0][1]
    finally:
        monkeypatch.setattr(build, "pieces", real)


def test_corrupt_compressed_piece_is_bad_compression(monkeypatch):
    payload = bytes(20000)
    n = struct.unpack_from("<H", make(payload, compress=True)[0][1], 220)[0]
    for piece in (
        lambda p: (n + 1).to_bytes(2, "little") + p[2:] + b"\x00",  # a byte too long
        lambda p: b"\x00\x00" + p[2:],  # length 0
        lambda p: p[:2] + b"\xff" * 8 + p[10:],  # not deflate
    ):
        assert code_of(_first_piece(monkeypatch, payload, piece)) == "BAD_COMPRESSION"


@pytest.mark.bad_input("tampered-byte")
def test_every_single_byte_flip_of_a_small_file_is_caught():
    f = make(os.urandom(300))[0][1]
    for i in range(len(f)):
        flipped = f[:i] + bytes([f[i] ^ 0x01]) + f[i + 1 :]
        with pytest.raises(image.ImageError):
            run(flipped, 4096)


@pytest.mark.bad_input("tampered-byte")
def test_every_single_byte_flip_of_a_compressed_supplier_file_is_caught():
    f = make(bytes(3000) + os.urandom(100), compress=True, supplier_key=SUPPLIER)[0][1]
    for i in range(len(f)):
        flipped = f[:i] + bytes([f[i] ^ 0x80]) + f[i + 1 :]
        try:
            _, _, v = run(flipped, 4096)
        except image.ImageError:
            continue
        # only the supplier signature is outside the manufacturer's (policy judges it)
        assert SUP.start <= i < SUP.stop and v.supplier_signature != f[SUP]


def test_errors_stick_after_the_first_one():
    v = image.Verifier(TRUST.get, lambda o, m: None)
    with pytest.raises(image.ImageError):
        v.feed(b"\x00" * 60)
    with pytest.raises(image.ImageError):
        v.feed(SMALL_FILE)
    with pytest.raises(image.ImageError):
        v.finish()


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _only_image_errors(data, check=None):
    try:
        run(data, 37)
    except image.ImageError as e:
        assert e.code in CODES
    try:
        image.parse_header(data)
    except image.ImageError:
        pass


CODES = set(
    "BAD_MAGIC BAD_HEADER_VERSION BAD_HEADER_LENGTH BAD_FIELD_CONTROL SIZE_MISMATCH TRUNCATED "
    "TRAILING_DATA TOO_LARGE BAD_MANIFEST WRONG_MANUFACTURER WRONG_IMAGE_TYPE HW_MISMATCH "
    "UNKNOWN_KEY INVALID_SIGNATURE BAD_CHAIN BAD_COMPRESSION BAD_FRAGMENT".split()
)
CFILE = make(bytes(5000) + os.urandom(50), compress=True)[0][1]


@FUZZ
@given(st.binary(max_size=400))
def test_fuzz_random_bytes_raise_only_image_errors(data):
    _only_image_errors(data)
    _only_image_errors(SMALL_FILE[:60] + data)


@FUZZ
@given(
    st.sampled_from([SMALL_FILE, CFILE]),
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=6),
    st.integers(0, 10**6),
)
def test_fuzz_mutated_files_raise_only_image_errors(base, edits, cut):
    b = bytearray(base)
    for pos, val in edits:
        b[pos % len(b)] = val
    data = bytes(b[: len(b) - cut % 3 * (cut % 70)])
    _only_image_errors(data)


@FUZZ
@given(st.binary(min_size=96, max_size=96))
def test_fuzz_manifest_parser_raises_only_image_errors(raw):
    header = image.parse_header(SMALL_FILE)
    for buf in (raw, image.MANIFEST_MAGIC + b"\x02" + raw[5:]):
        try:
            image.parse_manifest(buf, header)
        except image.ImageError as e:
            assert e.code in CODES


def test_one_verifier_reset_per_file_checks_each_like_a_new_one():
    """A board keeps one Verifier and resets it per file: an error or a finished file
    leaves nothing behind for the next, and reset(None, None) drops the last file."""
    files = [f for _, f in make(os.urandom(30000) + bytes(30000), compress=True, max_size=20000)]
    assert len(files) >= 2
    bad = bytearray(files[0])
    bad[len(bad) // 2] ^= 1
    got = {}

    def sink(off, mv):
        got[off] = bytes(mv)

    v = image.Verifier(TRUST.get, sink)
    with pytest.raises(image.ImageError):
        v.feed(bytes(bad))
        v.finish()
    for f in files:
        v.reset(TRUST.get, sink)
        for i in range(0, len(f), 200):
            v.feed(f[i : i + 200])
        m = v.finish()
        assert m == run(f)[0]
        assert v.signature == f[SIG] and v.header.total_size == len(f)
    v.reset(None, None)
    assert v.manifest is None and v.header is None and v.digest is None and v._h is None
    with pytest.raises(image.ImageError, match="TRUNCATED"):
        v.finish()
