"""otaclient.p256 against published vectors and `cryptography`, under CPython and MicroPython."""

import hashlib
import os
from pathlib import Path

import cryptography_vectors
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    Prehashed,
    decode_dss_signature,
    encode_dss_signature,
)
from mpy import check_mpy
from otaclient import p256

N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
GX = 0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296  # SEC 2, base point
GY = 0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5

# RFC 6979 appendix A.2.5: P-256 key and the SHA-256 signatures of "sample" and "test"
RFC_PRIV = "C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721"
RFC_PUB = (
    "60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6"
    "7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299"
)
RFC_SIGS = {
    b"sample": "EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716"
    "F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8",
    b"test": "F1ABB023518351CD71D881567B1EA663ED3EFCF6C5132B354F28D3B0B7D38367"
    "019F4113742A2B14BD25926B49C649155F267E60D3814B4C0CC84250E46F0083",
}
# NIST CAVP SigVer (FIPS 186-3), [P-256,SHA-256]: two passing, three failing cases
CAVP = [
    (  # Result = P
        "e1130af6a38ccb412a9c8d13e15dbfc9e69a16385af3c3f1e5da954fd5e7c45fd75e2b8c36699228e92840c0562fbf3772f07e17f1add56588dd45f7450e1217ad239922dd9c32695dc71ff2424ca0dec1321aa47064a044b7fe3c2b97d03ce470a592304c5ef21eed9f93da56bb232d1eeb0035f9bf0dfafdcc4606272b20a3",
        "e424dc61d4bb3cb7ef4344a7f8957a0c5134e16f7a67c074f82e6e12f49abf3c",
        "970eed7aa2bc48651545949de1dddaf0127e5965ac85d1243d6f60e7dfaee927",
        "bf96b99aa49c705c910be33142017c642ff540c76349b9dab72f981fd9347f4f",
        "17c55095819089c2e03b9cd415abdf12444e323075d98f31920b9e0f57ec871c",
        True,
    ),
    (  # Result = F (3 - S changed)
        "e4796db5f785f207aa30d311693b3702821dff1168fd2e04c0836825aefd850d9aa60326d88cde1a23c7745351392ca2288d632c264f197d05cd424a30336c19fd09bb229654f0222fcb881a4b35c290a093ac159ce13409111ff0358411133c24f5b8e2090d6db6558afc36f06ca1f6ef779785adba68db27a409859fc4c4a0",
        "87f8f2b218f49845f6f10eec3877136269f5c1a54736dbdf69f89940cad41555",
        "e15f369036f49842fac7a86c8a2b0557609776814448b8f5e84aa9f4395205e9",
        "d19ff48b324915576416097d2544f7cbdf8768b1454ad20e0baac50e211f23b0",
        "a3e81e59311cdfff2d4784949f7a2cb50ba6c3a91fa54710568e61aca3e847c6",
        False,
    ),
    (  # Result = F (2 - R changed)
        "069a6e6b93dfee6df6ef6997cd80dd2182c36653cef10c655d524585655462d683877f95ecc6d6c81623d8fac4e900ed0019964094e7de91f1481989ae1873004565789cbf5dc56c62aedc63f62f3b894c9c6f7788c8ecaadc9bd0e81ad91b2b3569ea12260e93924fdddd3972af5273198f5efda0746219475017557616170e",
        "5cf02a00d205bdfee2016f7421807fc38ae69e6b7ccd064ee689fc1a94a9f7d2",
        "ec530ce3cc5c9d1af463f264d685afe2b4db4b5828d7e61b748930f3ce622a85",
        "dc23d130c6117fb5751201455e99f36f59aba1a6a21cf2d0e7481a97451d6693",
        "d6ce7708c18dbf35d4f8aa7240922dc6823f2e7058cbc1484fcad1599db5018c",
        False,
    ),
    (  # Result = F (4 - Q changed)
        "df04a346cf4d0e331a6db78cca2d456d31b0a000aa51441defdb97bbeb20b94d8d746429a393ba88840d661615e07def615a342abedfa4ce912e562af714959896858af817317a840dcff85a057bb91a3c2bf90105500362754a6dd321cdd86128cfc5f04667b57aa78c112411e42da304f1012d48cd6a7052d7de44ebcc01de",
        "2ddfd145767883ffbb0ac003ab4a44346d08fa2570b3120dcce94562422244cb",
        "5f70c7d11ac2b7a435ccfbbae02c3df1ea6b532cc0e9db74f93fffca7c6f9a64",
        "9913111cff6f20c5bf453a99cd2c2019a4e749a49724a08774d14e4c113edda8",
        "9467cd4cd21ecb56b0cab0a9a453b43386845459127a952421f5c6382866c5cc",
        False,
    ),
]


def _cavp_args(case):
    msg, qx, qy, r, s, ok = case
    digest = hashlib.sha256(bytes.fromhex(msg)).digest()
    return bytes.fromhex(qx + qy), digest, bytes.fromhex(r + s), ok


def sigver_cases():
    """Every [P-256,SHA-256] case of the installed CAVP SigVer.rsp."""
    path = Path(cryptography_vectors.__file__).parent / "asymmetric/ECDSA/FIPS_186-3/SigVer.rsp"
    section = path.read_text().split("[P-256,SHA-256]")[1].split("[")[0]
    cases = []
    for block in section.strip().split("\n\n"):
        f = dict(line.split(" = ", 1) for line in block.strip().splitlines())
        cases.append((f["Msg"], f["Qx"], f["Qy"], f["R"], f["S"], f["Result"].startswith("P")))
    return cases


def test_rfc6979_public_key_and_deterministic_signatures():
    priv = bytes.fromhex(RFC_PRIV)
    assert p256.public_key(priv).hex().upper() == RFC_PUB
    for msg, sig in RFC_SIGS.items():
        digest = hashlib.sha256(msg).digest()
        assert p256.sign(priv, digest).hex().upper() == sig, msg
        assert p256.verify(bytes.fromhex(RFC_PUB), digest, bytes.fromhex(sig))


def test_written_cavp_cases():
    for case in CAVP:
        pub, digest, sig, ok = _cavp_args(case)
        assert p256.verify(pub, digest, sig) is ok, case[3]


def test_every_cavp_sigver_p256_sha256_case_from_cryptography_vectors():
    cases = sigver_cases()
    assert len(cases) == 15 and any(c[5] for c in cases) and not all(c[5] for c in cases)
    for case in cases:
        pub, digest, sig, ok = _cavp_args(case)
        assert p256.verify(pub, digest, sig) is ok, case[3]


def _raw_pub(key):
    return key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )[1:]


def test_ours_signs_cryptography_verifies_with_random_keys():
    for _ in range(8):
        key = ec.generate_private_key(ec.SECP256R1())
        priv = key.private_numbers().private_value.to_bytes(32, "big")
        assert p256.public_key(priv) == _raw_pub(key)
        digest = os.urandom(32)
        sig = p256.sign(priv, digest)
        der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
        key.public_key().verify(der, digest, ec.ECDSA(Prehashed(hashes.SHA256())))


def test_cryptography_signs_ours_verifies_and_rejects_tampering():
    for _ in range(8):
        key = ec.generate_private_key(ec.SECP256R1())
        digest = os.urandom(32)
        r, s = decode_dss_signature(key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256()))))
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        pub = _raw_pub(key)
        assert p256.verify(pub, digest, sig)
        assert p256.verify(pub, digest, r.to_bytes(32, "big") + (N - s).to_bytes(32, "big"))
        bad = bytes([digest[0] ^ 1]) + digest[1:]
        assert not p256.verify(pub, bad, sig)
        assert not p256.verify(pub, digest, sig[:63] + bytes([sig[63] ^ 1]))


def _z(n):
    return n.to_bytes(32, "big")


def test_out_of_range_scalars_and_bad_points_are_rejected():
    pub = bytes.fromhex(RFC_PUB)
    digest = hashlib.sha256(b"sample").digest()
    sig = bytes.fromhex(RFC_SIGS[b"sample"])
    r, s = sig[:32], sig[32:]
    for bad in (_z(0) + s, r + _z(0), _z(N) + s, r + _z(N), _z(N + 1) + s, b"\xff" * 32 + s):
        assert not p256.verify(pub, digest, bad)
    off_curve = pub[:63] + bytes([pub[63] ^ 1])
    assert not p256.verify(off_curve, digest, sig)
    assert not p256.verify(b"\x00" * 64, digest, sig)  # (0, 0): not on the curve
    big = b"\xff" * 32 + pub[32:]  # x >= p
    assert not p256.verify(big, digest, sig)
    assert not p256.verify(pub[:63], digest, sig)
    assert not p256.verify(pub, digest[:31], sig)
    with pytest.raises(ValueError):
        p256.public_key(_z(0))
    with pytest.raises(ValueError):
        p256.sign(_z(N), digest)


def test_vectors_under_micropython_with_64k_heap():
    cavp = [_cavp_args(c) for c in CAVP]
    code = f"""
import hashlib, binascii, gc, time
from otaclient import p256
h = binascii.unhexlify
priv = h({RFC_PRIV!r}); pub = h({RFC_PUB!r})
assert p256.public_key(priv) == pub
for msg, sig in {[(m, s) for m, s in RFC_SIGS.items()]!r}:
    d = hashlib.sha256(msg).digest()
    assert p256.sign(priv, d) == h(sig), msg
    assert p256.verify(pub, d, h(sig))
for q, d, sig, ok in {cavp!r}:
    assert p256.verify(q, d, sig) is ok
d = hashlib.sha256(b"sample").digest(); sig = h({RFC_SIGS[b"sample"]!r})
assert not p256.verify(pub, d, bytes(32) + sig[32:])
assert not p256.verify(pub, d, sig[:32] + h({_z(N).hex()!r}))
assert not p256.verify(pub[:63] + b"\\x00", d, sig)
assert not p256.verify(pub, d[:31] + b"\\x00", sig)
gc.collect()
t0 = time.ticks_us()
for i in range(20):
    p256.verify(pub, d, sig)
print("verify_ms", time.ticks_diff(time.ticks_us(), t0) / 20000)
"""
    out = check_mpy(code)
    ms = float(out.split()[-1])
    assert ms < 50, f"P-256 verify took {ms} ms under MicroPython"


def _affine(X, Y, Z):
    p = p256._P
    zi = pow(Z, p - 2, p)
    return X * zi * zi % p, Y * zi * zi * zi % p


@pytest.mark.parametrize("z", [1, 7])  # an affine and a Jacobian second operand
def test_addition_of_equal_and_opposite_points(z):
    # the branches no signature vector is sure to reach: P + P doubles, P + (-P) is infinity
    p = p256._P
    X, Y, Z = p256._dbl(GX, GY, 1, p)  # 2G, Jacobian with Z != 1
    X2, Y2 = _affine(X, Y, Z)
    X2, Y2 = X2 * z * z % p, Y2 * z * z * z % p  # the same point with Z == z
    assert _affine(*p256._add(X, Y, Z, X2, Y2, z, p)) == _affine(*p256._dbl(X, Y, Z, p))
    assert p256._add(X, Y, Z, X2, p - Y2, z, p)[2] == 0
    # and a plain sum agrees with cryptography's: 2G + G == 3G
    three = ec.derive_private_key(3, ec.SECP256R1()).public_key().public_numbers()
    assert _affine(*p256._add(X, Y, Z, GX, GY, 1, p)) == (three.x, three.y)


def test_the_fixed_base_table_is_g_3g_to_15g():
    # the 512-byte literal: G, 3G, .., 15G (affine x || y), as _fill computes them and as
    # cryptography derives them
    assert bytes(p256._fill(bytearray(512), GX, GY, p256._P)) == p256._GTAB
    for i in range(8):
        pt = ec.derive_private_key(2 * i + 1, ec.SECP256R1()).public_key().public_numbers()
        xy = pt.x.to_bytes(32, "big") + pt.y.to_bytes(32, "big")
        assert p256._GTAB[64 * i : 64 * i + 64] == xy
