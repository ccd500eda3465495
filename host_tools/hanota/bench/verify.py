"""ECDSA P-256 verify: ours on the MicroPython unix port and on CPython, pure-Python
`ecdsa` on CPython, OpenSSL through `cryptography`; all on the same signatures."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from hanota.image.keys import generate, raw_public, sign_raw

from . import mpy
from .results import Bar, Figure, Section

_MPY = """
import time, json
from otaclient import p256
V = json.loads({vectors!r})
V = [(bytes.fromhex(a), bytes.fromhex(b), bytes.fromhex(c)) for a, b, c in V]
for pub, d, s in V:
    assert p256.verify(pub, d, s)
n = {n}
t0 = time.ticks_us()
for i in range(n):
    pub, d, s = V[i % len(V)]
    p256.verify(pub, d, s)
dt = time.ticks_diff(time.ticks_us(), t0)
p256 = None
from otaclient import image  # the agent's way: load P-256 for the call, let it go after
image.p256_call("verify", *V[0])
t0 = time.ticks_us()
for i in range(n):
    pub, d, s = V[i % len(V)]
    image.p256_call("verify", pub, d, s)
dt2 = time.ticks_diff(time.ticks_us(), t0)
print("BENCH " + json.dumps({{"n": n, "ms": dt / 1000 / n, "call_ms": dt2 / 1000 / n}}))
"""


def vectors(count: int = 8) -> list[tuple[bytes, bytes, bytes]]:
    """(pub64, digest32, sig64) from fresh keys, signed by OpenSSL."""
    out = []
    for i in range(count):
        key = generate()
        msg = b"hanota bench %d" % i
        digest = hashlib.sha256(msg).digest()
        out.append((raw_public(key.public_key()), digest, sign_raw(key, msg)))
    return out


def _per_call(fn: Callable[[int], object], n: int) -> float:
    """ms per call of fn(i), i in range(n), after one warm-up call."""
    fn(0)
    t0 = time.perf_counter()
    for i in range(n):
        fn(i)
    return (time.perf_counter() - t0) * 1000 / n


def _ours(vecs: list[tuple[bytes, bytes, bytes]], n: int) -> float:
    from otaclient import p256

    return _per_call(lambda i: p256.verify(*vecs[i % len(vecs)]), n)


def _ecdsa(vecs: list[tuple[bytes, bytes, bytes]], n: int) -> float:
    import ecdsa

    keys = [ecdsa.VerifyingKey.from_string(v[0], curve=ecdsa.NIST256p) for v in vecs]

    def one(i: int) -> bool:
        _pub, d, s = vecs[i % len(vecs)]
        return keys[i % len(vecs)].verify_digest(s, d)

    return _per_call(one, n)


def _openssl(vecs: list[tuple[bytes, bytes, bytes]], n: int) -> float:
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

    pubs = [
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + v[0]) for v in vecs
    ]
    ders = [
        encode_dss_signature(int.from_bytes(v[2][:32], "big"), int.from_bytes(v[2][32:], "big"))
        for v in vecs
    ]
    algo = ec.ECDSA(Prehashed(hashes.SHA256()))

    def one(i: int) -> None:
        j = i % len(vecs)
        pubs[j].verify(ders[j], vecs[j][1], algo)

    return _per_call(one, n)


def _mpy(vecs: list[tuple[bytes, bytes, bytes]], n: int) -> tuple[float, float]:
    """(ms per verify with the module loaded, ms per image.p256_call("verify", ...))."""
    hexed = json.dumps([[a.hex(), b.hex(), c.hex()] for a, b, c in vecs])
    doc = mpy.run(_MPY.format(vectors=hexed, n=n), heap="64k")[-1]
    return float(doc["ms"]), float(doc["call_ms"])


def measure(quick: bool = False) -> Section:
    vecs = vectors()
    n_mpy, n_ours, n_ecdsa, n_ssl = (8, 8, 8, 200) if quick else (200, 100, 100, 5000)
    mp, mp_call = _mpy(vecs, n_mpy)
    ours = _ours(vecs, n_ours)
    peer = _ecdsa(vecs, n_ecdsa)
    ssl = _openssl(vecs, n_ssl)
    s = Section("verify", "ECDSA P-256 verify")
    s.method = (
        f"Eight fresh P-256 keys, one SHA-256 digest each, signed by OpenSSL. Each verifier "
        f"checks them round-robin in one process after a warm-up: ours under "
        f"`micropython -X heapsize=64k` ({n_mpy} verifies, `time.ticks_us`; then as "
        f"many through `image.p256_call`, which loads the module from its .mpy for the "
        f"call and lets it go after, as the agent does), ours on CPython ({n_ours}), pure-Python `ecdsa` "
        f"({n_ecdsa}), OpenSSL through `cryptography` ({n_ssl}, prehashed)."
    )
    s.add(
        Figure("mpy_ms", "ours, MicroPython unix port (64 KB heap)", mp, "ms",
               Bar("<=", 10, "ms")),
        Figure("mpy_call_ms", "ours, MicroPython, loaded for each call and let go "
               "(`image.p256_call`, the agent's way)", mp_call, "ms", Bar("<=", 10, "ms")),
        Figure("cpython_ms", "ours, CPython", ours, "ms"),
        Figure("ecdsa_ms", "pure-Python `ecdsa`, CPython (peer)", peer, "ms"),
        Figure("openssl_ms", "OpenSSL via `cryptography` (physical-limit reference)", ssl, "ms"),
        Figure("mpy_over_ecdsa", "ours on MicroPython / `ecdsa` on CPython (time)", mp / peer, "×"),
        Figure("cpython_over_ecdsa", "ours on CPython / `ecdsa` on CPython (time)", ours / peer, "×"),
        Figure("mpy_vs_openssl", "ours (MicroPython) time / OpenSSL time", mp / ssl, "×"),
    )  # fmt: skip
    return s
