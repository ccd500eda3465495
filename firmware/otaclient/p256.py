"""ECDSA over NIST P-256 with SHA-256 digests: verify, sign (RFC 6979 nonces), public key.

Pure Python on big ints (MicroPython and CPython). Not constant time: signing leaks
timing, acceptable for the board's own alerts, not against a local side-channel attacker.
"""

import hashlib

# curve y^2 = x^3 - 3x + b over GF(p); group order n; base point G
_P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
_GX = 0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296
_GY = 0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5
_WG = 5  # wNAF width for G: 8 precomputed affine points (512 bytes), built once
_WQ = 4  # wNAF width for the public key: 4 affine points per verify
# odd multiples G, 3G, .. as affine x || y, 64 bytes each, in one 512-byte buffer (as big
# ints ~2.5 KB in small blocks). Taken at import, beside the loaded code, and filled on
# first use: a block taken later, among the arithmetic's garbage, splits the big holes of
# a 64 KB heap. The public key's Q, 3Q, 5Q, 7Q go the same way into a 256-byte buffer,
# filled per verify (an inversion per point, ~1 ms): held as Jacobian big ints through
# the whole multiplication they cost KBs; with them verify needed ~10 KB free. Filled in
# affine arithmetic, with the scalars held only as NAF digits during the multiplication
# and Z3 = 2*Y*Z in the doubling, verify needs ~2.8 KB (session 5; was ~4.5).
_gtab = bytearray(64 << (_WG - 2))
_qtab = bytearray(64 << (_WQ - 2))
# the two scalars' digits, one signed byte each: taken here too, not per verify; _mul
# reads them, not the scalars
_naf1 = bytearray(258)
_naf2 = bytearray(258)
_gready = False


def _dbl(X, Y, Z, p):
    # dbl-2001-b (a = -3) with Z3 = 2*Y*Z; Z == 0 (infinity) or Y == 0 gives Z3 == 0.
    # Names are reused so that few 256-bit ints are live at once (verify's heap)
    d = Z * Z % p  # delta
    Z = 2 * Y * Z % p  # Z3
    Y = Y * Y % p  # gamma
    b = X * Y % p  # beta
    X = 3 * (X - d) * (X + d) % p  # alpha
    d = (X * X - 8 * b) % p  # X3
    return d, (X * (4 * b - d) - 8 * Y * Y) % p, Z


def _add(X1, Y1, Z1, X2, Y2, Z2, p):
    # Jacobian + Jacobian (Z2 == 1 for an affine point), names reused as in _dbl
    if not Z1:
        return X2, Y2, Z2
    if not Z2:
        return X1, Y1, Z1
    t = Z1 * Z1 % p
    if Z2 != 1:
        u = Z2 * Z2 % p
        X1 = X1 * u % p  # U1
        Y1 = Y1 * Z2 * u % p  # S1
    X2 = (X2 * t - X1) % p  # H
    Y2 = (Y2 * Z1 * t - Y1) % p  # R
    if not X2:  # same x: the same point (double it: U1, S1, Z1*Z2 is P1) or P1 == -P2
        return _dbl(X1, Y1, Z1 * Z2 % p, p) if not Y2 else (1, 1, 0)
    t = X2 * X2 % p  # H^2
    u = X2 * t % p  # H^3
    t = X1 * t % p  # V = U1 * H^2
    X1 = (Y2 * Y2 - u - 2 * t) % p  # X3
    return X1, (Y2 * (t - X1) - Y1 * u) % p, Z1 * Z2 * X2 % p


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


def _g_table():
    global _gready
    if not _gready:
        _fill(_gtab, _GX, _GY, _P)
        _gready = True
    return _gtab


def prepare():
    """Build the fixed-base table now (first verify/sign does it otherwise): call at boot,
    before the heap fragments."""
    _g_table()


def _point(tab, d, p):
    # affine (x, y) of digit d (a signed byte: odd, +-1 .. +-(2^(WG-1) - 1))
    i = ((d if d < 128 else 256 - d) >> 1) << 6
    y = int.from_bytes(tab[i + 32 : i + 64], "big")
    return int.from_bytes(tab[i : i + 32], "big"), (y if d < 128 else p - y)


def _mul(l1, l2=0, qtab=None):
    # k1*G + k2*Q (Shamir: one chain of doublings) from the NAF digits of k1 in _naf1 (l1
    # of them) and of k2 in _naf2 (l2): the scalars themselves are not held. Jacobian result
    p = _P
    gt = _g_table()
    n1, n2 = _naf1, _naf2
    X, Y, Z = 1, 1, 0
    for i in range(max(l1, l2) - 1, -1, -1):
        if Z:
            X, Y, Z = _dbl(X, Y, Z, p)
        d = n1[i] if i < l1 else 0
        if d:
            x, y = _point(gt, d, p)
            X, Y, Z = _add(X, Y, Z, x, y, 1, p)
        d = n2[i] if i < l2 else 0
        if d:
            x, y = _point(qtab, d, p)
            X, Y, Z = _add(X, Y, Z, x, y, 1, p)
        x = y = None
    return X, Y, Z


def _on_curve(x, y):
    p = _P
    return 0 <= x < p and 0 <= y < p and (y * y - x * x * x + 3 * x - _B) % p == 0


def verify(pub64, digest32, sig64):
    """True when sig64 (r || s, big-endian) is a valid signature of digest32 by pub64 (X || Y)."""
    if len(pub64) != 64 or len(sig64) != 64 or len(digest32) != 32:
        return False
    n = _N
    x = int.from_bytes(pub64[:32], "big")
    y = int.from_bytes(pub64[32:], "big")
    r = int.from_bytes(sig64[:32], "big")
    s = int.from_bytes(sig64[32:], "big")
    if not (0 < r < n and 0 < s < n and _on_curve(x, y)):
        return False
    w = pow(s, n - 2, n)
    s = None  # big ints let go as soon as they are spent: verify's heap on a small board
    tab = _fill(_qtab, x, y, _P)
    x = y = None
    l1 = _naf(int.from_bytes(digest32, "big") * w % n, _WG, _naf1)  # u1 = e * w
    l2 = _naf(r * w % n, _WQ, _naf2)  # u2 = r * w
    w = None
    X, _, Z = _mul(l1, l2, tab)
    if not Z:
        return False
    # x(R) mod n == r, without an inversion: X == r' * Z^2 for r' in {r, r + n} below p
    zz = Z * Z % _P
    return (X - r * zz) % _P == 0 or (r + n < _P and (X - (r + n) * zz) % _P == 0)


def _affine_x(k):
    X, _, Z = _mul(_naf(k, _WG, _naf1))
    zi = pow(Z, _P - 2, _P)
    return X * zi * zi % _P, Z


def public_key(priv32):
    """The 64-byte X || Y public key of a 32-byte big-endian private key."""
    d = int.from_bytes(priv32, "big")
    if not 0 < d < _N:
        raise ValueError("bad private key")
    X, Y, Z = _mul(_naf(d, _WG, _naf1))
    zi = pow(Z, _P - 2, _P)
    z2 = zi * zi % _P
    return (X * z2 % _P).to_bytes(32, "big") + (Y * z2 * zi % _P).to_bytes(32, "big")


def _hmac(key, msg):
    # HMAC-SHA256 (RFC 2104) over hashlib: MicroPython has no hmac module; key is 32 bytes
    k = bytearray(64)
    k[: len(key)] = key
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in k))
    inner.update(msg)
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in k))
    outer.update(inner.digest())
    return outer.digest()


def _nonces(d, digest32):
    # RFC 6979 section 3.2 for qlen == hlen == 256: yields candidate k values
    bx = d.to_bytes(32, "big") + (int.from_bytes(digest32, "big") % _N).to_bytes(32, "big")
    v = b"\x01" * 32
    k = _hmac(b"\x00" * 32, v + b"\x00" + bx)
    v = _hmac(k, v)
    k = _hmac(k, v + b"\x01" + bx)
    v = _hmac(k, v)
    while True:
        v = _hmac(k, v)
        t = int.from_bytes(v, "big")
        if 0 < t < _N:
            yield t
        k = _hmac(k, v + b"\x00")
        v = _hmac(k, v)


def sign(priv32, digest32):
    """Deterministic (RFC 6979) signature r || s of a 32-byte digest."""
    d = int.from_bytes(priv32, "big")
    if not 0 < d < _N or len(digest32) != 32:
        raise ValueError("bad private key or digest")
    e = int.from_bytes(digest32, "big") % _N
    for k in _nonces(d, digest32):
        x, _ = _affine_x(k)
        r = x % _N
        s = pow(k, _N - 2, _N) * (e + r * d) % _N
        if r and s:
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")
