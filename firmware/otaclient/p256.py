"""ECDSA over NIST P-256 with SHA-256 digests: verify, sign (RFC 6979 nonces), public key.

Pure Python on big ints (MicroPython and CPython). Not constant time: signing leaks
timing, acceptable for the board's own alerts, not against a local side-channel attacker.
"""

from micropython import const

# curve y^2 = x^3 - 3x + b over GF(p); group order n; base point G. Constants, as the G
# table below: the agent loads this module for each verify (image.p256_call), at a
# fragment's end, when the heap is used and cut up. Every global is a slot in the
# module's table, which that load must find in one piece: keep the globals to the
# functions (no tables, no constants as globals; sizes in docs/agent.md, Memory).
_P = const(0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF)
_N = const(0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551)
# wNAF widths: 5 for G (8 precomputed affine points), 4 for the public key (4 per
# verify), literals as b is.
#
# G, 3G, .., 15G as affine x || y, 64 bytes each: the base point G = (0x6B17D1F2...,
# 0x4FE342E2...) first, then what _fill(bytearray(512), Gx, Gy, _P) gives (tests check
# it). A literal: on a board it stays in the app image (ROM), not the heap, and no verify
# waits for it. The public key's Q, 3Q, 5Q, 7Q go into 256 bytes of scratch, filled per
# verify (an inversion per point, ~1 ms): held as Jacobian big ints through the whole
# multiplication they would cost KBs. Fill them in affine arithmetic, hold the scalars
# only as NAF digits during the multiplication, and take Z3 = 2*Y*Z in the doubling:
# verify must run in the free heap a fragment's end leaves (docs/agent.md, Memory).
_GTAB = const(
    b"\x6b\x17\xd1\xf2\xe1\x2c\x42\x47\xf8\xbc\xe6\xe5\x63\xa4\x40\xf2\x77\x03\x7d\x81\x2d\xeb\x33\xa0\xf4\xa1\x39\x45\xd8\x98\xc2\x96\x4f\xe3\x42\xe2\xfe\x1a\x7f\x9b\x8e\xe7\xeb\x4a\x7c\x0f\x9e\x16\x2b\xce\x33\x57\x6b\x31\x5e\xce\xcb\xb6\x40\x68\x37\xbf\x51\xf5"
    b"\x5e\xcb\xe4\xd1\xa6\x33\x0a\x44\xc8\xf7\xef\x95\x1d\x4b\xf1\x65\xe6\xc6\xb7\x21\xef\xad\xa9\x85\xfb\x41\x66\x1b\xc6\xe7\xfd\x6c\x87\x34\x64\x0c\x49\x98\xff\x7e\x37\x4b\x06\xce\x1a\x64\xa2\xec\xd8\x2a\xb0\x36\x38\x4f\xb8\x3d\x9a\x79\xb1\x27\xa2\x7d\x50\x32"
    b"\x51\x59\x0b\x7a\x51\x51\x40\xd2\xd7\x84\xc8\x56\x08\x66\x8f\xdf\xef\x8c\x82\xfd\x1f\x5b\xe5\x24\x21\x55\x4a\x0d\xc3\xd0\x33\xed\xe0\xc1\x7d\xa8\x90\x4a\x72\x7d\x8a\xe1\xbf\x36\xbf\x8a\x79\x26\x0d\x01\x2f\x00\xd4\xd8\x08\x88\xd1\xd0\xbb\x44\xfd\xa1\x6d\xa4"
    b"\x8e\x53\x3b\x6f\xa0\xbf\x7b\x46\x25\xbb\x30\x66\x7c\x01\xfb\x60\x7e\xf9\xf8\xb8\xa8\x0f\xef\x5b\x30\x06\x28\x70\x31\x87\xb2\xa3\x73\xeb\x1d\xbd\xe0\x33\x18\x36\x6d\x06\x9f\x83\xa6\xf5\x90\x00\x53\xc7\x36\x33\xcb\x04\x1b\x21\xc5\x5e\x1a\x86\xc1\xf4\x00\xb4"
    b"\xea\x68\xd7\xb6\xfe\xdf\x0b\x71\x87\x89\x38\xd5\x1d\x71\xf8\x72\x9e\x0a\xcb\x8c\x2c\x6d\xf8\xb3\xd7\x9e\x8a\x4b\x90\x94\x9e\xe0\x2a\x27\x44\xc9\x72\xc9\xfc\xe7\x87\x01\x4a\x96\x4a\x8e\xa0\xc8\x4d\x71\x4f\xea\xa4\xde\x82\x3f\xe8\x5a\x22\x4a\x4d\xd0\x48\xfa"
    b"\x3e\xd1\x13\xb7\x88\x3b\x4c\x59\x06\x38\x37\x9d\xb0\xc2\x1c\xda\x16\x74\x2e\xd0\x25\x50\x48\xbf\x43\x33\x91\xd3\x74\xbc\x21\xd1\x90\x99\x20\x9a\xcc\xc4\xc8\xa2\x24\xc8\x43\xaf\xa4\xf4\xc6\x8a\x09\x0d\x04\xda\x5e\x98\x89\xda\xe2\xf8\xee\xfc\xe8\x2a\x37\x40"
    b"\x17\x7c\x83\x7a\xe0\xac\x49\x5a\x61\x80\x5d\xf2\xd8\x5e\xe2\xfc\x79\x2e\x28\x4b\x65\xea\xd5\x8a\x98\xe1\x5d\x9d\x46\x07\x2c\x01\x63\xbb\x58\xcd\x4e\xbe\xa5\x58\xa2\x40\x91\xad\xb4\x0f\x4e\x72\x26\xee\x14\xc3\xa1\xfb\x4d\xf3\x9c\x43\xbb\xe2\xef\xc7\xbf\xd8"
    b"\xf0\x45\x4d\xc6\x97\x1a\xba\xe7\xad\xfb\x37\x89\x99\x88\x82\x65\xae\x03\xaf\x92\xde\x3a\x0e\xf1\x63\x66\x8c\x63\xe5\x9b\x9d\x5f\xb5\xb9\x3e\xe3\x59\x2e\x2d\x1f\x4e\x65\x94\xe5\x1f\x96\x43\xe6\x2a\x3b\x21\xce\x75\xb5\xfa\x3f\x47\xe5\x9c\xde\x0d\x03\x4f\x36"
)
# verify's scratch, 772 bytes: the two scalars' NAF digits (one signed byte each, 258
# apiece: _mul reads them, not the scalars) and the public key's table (256). The agent
# lends its idle flash write buffer (Reassembly.scratch), so a verify takes no mid-size
# block from a used heap; other callers get a new one per call.


def _dbl(X, Y, Z, p):
    # dbl-2001-b (a = -3) with Z3 = 2*Y*Z; Z == 0 (infinity) or Y == 0 gives Z3 == 0.
    # Names are reused, and every product is reduced before the next operation, so that
    # few big ints are live at once and none is wider than one product (512 bits): a
    # used heap has few free runs of the 3 blocks one product takes (verify's heap)
    d = Z * Z % p  # delta
    Z = 2 * Y * Z % p  # Z3
    Y = Y * Y % p  # gamma
    b = X * Y % p  # beta
    X = 3 * (X - d) * (X + d) % p  # alpha
    d = (X * X % p - 8 * b) % p  # X3
    return d, (X * (4 * b - d) % p - 8 * (Y * Y % p)) % p, Z


def _add(X1, Y1, Z1, X2, Y2, Z2, p):
    # Jacobian + Jacobian (Z2 == 1 for an affine point), names reused and every product
    # reduced at once, as in _dbl
    if not Z1:
        return X2, Y2, Z2
    if not Z2:
        return X1, Y1, Z1
    t = Z1 * Z1 % p
    if Z2 != 1:
        u = Z2 * Z2 % p
        X1 = X1 * u % p  # U1
        Y1 = Y1 * Z2 % p * u % p  # S1
    X2 = (X2 * t % p - X1) % p  # H
    Y2 = (Y2 * Z1 % p * t % p - Y1) % p  # R
    if not X2:  # same x: the same point (double it: U1, S1, Z1*Z2 is P1) or P1 == -P2
        return _dbl(X1, Y1, Z1 * Z2 % p, p) if not Y2 else (1, 1, 0)
    t = X2 * X2 % p  # H^2
    u = X2 * t % p  # H^3
    t = X1 * t % p  # V = U1 * H^2
    X1 = (Y2 * Y2 % p - u - 2 * t) % p  # X3
    return X1, (Y2 * (t - X1) % p - Y1 * u % p) % p, Z1 * Z2 % p * X2 % p


def _naf(k, w, out):
    # width-w NAF digits of k, least significant first, as signed bytes into out; their count
    full = 1 << w
    half = full >> 1
    i = 0
    while k:
        d = 0
        if k & 1:
            d = k & (full - 1)
            if d >= half:
                d -= full
            k -= d
        out[i] = d & 0xFF
        i += 1
        k >>= 1
    return i


def _fill(tab, x, y, p):
    # tab <- affine x || y of P, 3P, 5P, ... for the affine point P = (x, y), in affine
    # arithmetic: one inversion per point (as a conversion from Jacobian would take) and
    # few big ints live at once, so verify needs less heap (P-256 has no point of small
    # order, so P_k + 2P never meets +-2P)
    t = (3 * x * x - 3) * pow(2 * y % p, p - 2, p) % p  # tangent slope (a = -3)
    x2 = (t * t - 2 * x) % p  # 2P
    y2 = (t * (x - x2) - y) % p
    i = 0
    while True:
        tab[i : i + 32] = x.to_bytes(32, "big")
        tab[i + 32 : i + 64] = y.to_bytes(32, "big")
        i += 64
        if i == len(tab):
            return tab
        t = (y2 - y) * pow((x2 - x) % p, p - 2, p) % p  # chord slope: P_k + 2P
        x3 = (t * t - x - x2) % p
        y = (t * (x - x3) - y) % p
        x = x3


def _mul(n1, l1, n2=None, l2=0, qtab=None):
    # k1*G + k2*Q (Shamir: one chain of doublings) from the NAF digits of k1 in n1 (l1 of
    # them) and of k2 in n2 (l2): the scalars themselves are not held. Jacobian result
    p = _P
    tabs = (memoryview(_GTAB), n1, l1), (qtab, n2, l2)  # slices of a view copy nothing
    X, Y, Z = 1, 1, 0
    for i in range(max(l1, l2) - 1, -1, -1):
        if Z:
            X, Y, Z = _dbl(X, Y, Z, p)
        for tab, digits, n in tabs:
            d = digits[i] if i < n else 0
            if d:
                # the affine point of digit d (a signed byte: odd, +-1 .. +-(2^(w-1) - 1)
                # for width w) is entry |d| >> 1 of the table; -P is (x, p - y)
                j = ((d if d < 128 else 256 - d) >> 1) << 6
                y = int.from_bytes(tab[j + 32 : j + 64], "big")
                x = int.from_bytes(tab[j : j + 32], "big")
                X, Y, Z = _add(X, Y, Z, x, y if d < 128 else p - y, 1, p)
                x = y = None
    return X, Y, Z


def verify(pub64, digest32, sig64, scratch=None):
    """True when sig64 (r || s, big-endian) is a valid signature of digest32 by pub64 (X || Y).
    `scratch`: a buffer of at least 772 bytes to work in, else a new one is taken."""
    if len(pub64) != 64 or len(sig64) != 64 or len(digest32) != 32:
        return False
    n = _N
    x = int.from_bytes(pub64[:32], "big")
    y = int.from_bytes(pub64[32:], "big")
    r = int.from_bytes(sig64[:32], "big")
    s = int.from_bytes(sig64[32:], "big")
    p = _P
    b = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
    if not (0 < r < n and 0 < s < n and 0 <= x < p and 0 <= y < p):
        return False
    if (y * y % p - x * (x * x % p - 3) % p - b) % p:  # y^2 = x^3 - 3x + b
        return False  # the public key is not on the curve
    w = pow(s, n - 2, n)
    s = None  # big ints let go as soon as they are spent: verify's heap on a small board
    if scratch is None or len(scratch) < 772:
        scratch = bytearray(772)
    m = memoryview(scratch)
    n1, n2, tab = m[:258], m[258:516], _fill(m[516:772], x, y, p)
    x = y = m = None
    l1 = _naf(int.from_bytes(digest32, "big") * w % n, 5, n1)  # u1 = e * w
    l2 = _naf(r * w % n, 4, n2)  # u2 = r * w
    w = None
    X, _, Z = _mul(n1, l1, n2, l2, tab)
    if not Z:
        return False
    # x(R) mod n == r, without an inversion: X == r' * Z^2 for r' in {r, r + n} below p
    zz = Z * Z % p
    return (X - r * zz) % p == 0 or (r + n < p and (X - (r + n) * zz) % p == 0)


def public_key(priv32):
    """The 64-byte X || Y public key of a 32-byte big-endian private key."""
    d = int.from_bytes(priv32, "big")
    if not 0 < d < _N:
        raise ValueError("bad private key")
    n1 = bytearray(258)
    X, Y, Z = _mul(n1, _naf(d, 5, n1))
    p = _P  # a local: "_P - 2" would be one more big-int constant the module holds
    zi = pow(Z, p - 2, p)
    z2 = zi * zi % p
    return (X * z2 % p).to_bytes(32, "big") + (Y * z2 * zi % p).to_bytes(32, "big")


def sign(priv32, digest32, scratch=None):
    """Deterministic (RFC 6979) signature r || s of a 32-byte digest. `scratch`: a buffer
    of at least 258 bytes to hold the nonce's NAF digits in, else a new one is taken."""
    import hashlib

    def hmac(key, msg):
        # HMAC-SHA256 (RFC 2104) over hashlib: MicroPython has no hmac module; 32-byte key
        k = bytearray(64)
        k[: len(key)] = key
        inner = hashlib.sha256(bytes(b ^ 0x36 for b in k))
        inner.update(msg)
        outer = hashlib.sha256(bytes(b ^ 0x5C for b in k))
        outer.update(inner.digest())
        return outer.digest()

    d = int.from_bytes(priv32, "big")
    if not 0 < d < _N or len(digest32) != 32:
        raise ValueError("bad private key or digest")
    e = int.from_bytes(digest32, "big") % _N
    # RFC 6979 section 3.2 for qlen == hlen == 256: candidate nonces k until r and s are
    # not zero
    bx = d.to_bytes(32, "big") + e.to_bytes(32, "big")
    v = b"\x01" * 32
    k = hmac(b"\x00" * 32, v + b"\x00" + bx)
    v = hmac(k, v)
    k = hmac(k, v + b"\x01" + bx)
    v = hmac(k, v)
    n1 = memoryview(scratch)[:258] if scratch is not None and len(scratch) >= 258 else None
    if n1 is None:
        n1 = bytearray(258)
    while True:
        v = hmac(k, v)
        t = int.from_bytes(v, "big")
        if 0 < t < _N:
            X, _, Z = _mul(n1, _naf(t, 5, n1))  # R = t*G; r = x(R) mod n
            p = _P  # locals: "_P - 2" would be one more constant the module holds, and
            n = _N  # "p, n = _P, _N" a tuple constant with copies of both
            zi = pow(Z, p - 2, p)
            r = X * zi * zi % p % n
            s = pow(t, n - 2, n) * (e + r * d) % n
            if r and s:
                return r.to_bytes(32, "big") + s.to_bytes(32, "big")
        k = hmac(k, v + b"\x00")
        v = hmac(k, v)
