"""The delta_applier fuzz target: delta payloads through Reassembly and otaclient.delta over a
strict in-memory port with a running slot, checked against the host's reference applier.

Input: byte 0 picks the form. Even: bytes 1-2 are a target length (u16 LE) and the rest
are ops, behind a descriptor made here for the fixture base (the only way a fuzzer gets
past the base check), whose target SHA-256 is what the host applier makes of it (zeros
when that fails). Odd: the rest is the whole payload, descriptor included.
Not here: the Verifier (image_parser fuzzes it); these bytes stand for authenticated ones.
"""

from __future__ import annotations

import hashlib
import random

from otaclient import image
from otaclient.policy import PolicyError

from hanota.fuzz.chunking import chunks, rng_for
from hanota.fuzz.fakeport import InvariantError, MemPort
from hanota.image import delta as hd

SECTORS = 6


def base() -> bytes:
    """The fixture base: 12 KB of code-like bytes (deterministic)."""
    rng = random.Random(0xDE17A)
    words = [rng.randbytes(rng.randint(2, 9)) for _ in range(32)]
    out = bytearray()
    while len(out) < 12288:
        out += rng.randbytes(8) if rng.random() < 0.3 else rng.choice(words)
    return bytes(out[:12288])


def target() -> bytes:
    """A release of the fixture base: moved words, an inserted and a removed block."""
    b = bytearray(base())
    for at in range(64, len(b) - 4, 501):
        b[at] = (b[at] + 0x20) & 0xFF
    b[3000:3000] = bytes(range(200))
    del b[9000:9300]
    return bytes(b)


class DeltaPort(MemPort):
    """MemPort plus a running slot (the base, then erased bytes) that may only be read."""

    def __init__(self, base: bytes) -> None:
        super().__init__(SECTORS)
        self.running = base + b"\xff" * (self.slot_size - len(base))

    def read_running(self, offset: int, buf: bytearray | memoryview) -> None:
        if offset < 0 or offset + len(buf) > len(self.running):
            raise InvariantError(f"read outside the running slot: {offset}+{len(buf)}")
        buf[:] = self.running[offset : offset + len(buf)]


def _payload(data: bytes, old: bytes) -> bytes:
    if not data or data[0] & 1:
        return data[1:]
    n = int.from_bytes(data[1:3].ljust(2, b"\x00"), "little") or 1
    ops = data[3:]

    def desc(sha: bytes) -> bytes:
        return hd.Descriptor(hd.ALG_BSDIFF, 1, len(old), hashlib.sha256(old).digest(), n,
                             sha).pack()  # fmt: skip

    try:
        made = hd.apply(old, desc(bytes(32)) + ops, check_target=False)
    except hd.DeltaError:
        return desc(bytes(32)) + ops
    return desc(hashlib.sha256(made).digest()) + ops


def delta_applier(data: bytes) -> None:
    """Only ImageError/PolicyError; no read of the running slot outside the base, no access
    outside the update slot; a payload the slot read-back accepts made exactly the
    descriptor's target, the same bytes the host applier makes; and one the host applier
    accepts, the board accepts too."""
    old = base()
    payload = _payload(data, old)
    port = DeltaPort(old)
    running = port.running
    from otaclient.reassembly import Reassembly

    r = Reassembly(port, bytearray(1024))
    sha = hashlib.sha256(payload).digest()
    n = max(len(payload), 1)
    m = image.Manifest(2, 0x1234, 0x84, 0, 0xFFFF, 2, 0, 1, n, sha, False, 0, 1, 0, n, n,
                       bytes(16), True)  # fmt: skip
    try:
        want = hd.apply(old, payload)
    except hd.DeltaError:
        want = None
    if want is not None and len(want) > port.slot_size:
        want = None  # a target the update slot cannot hold: the board refuses it
    ok = False
    try:
        r.begin(m)
        off = 0
        for c in chunks(payload, rng_for(data)):
            r.sink(off, memoryview(c))
            off += len(c)
        r.finish(m)
        r.verify_slot()
        ok = True
    except (image.ImageError, PolicyError):
        pass
    if port.running != running:
        raise InvariantError("the running slot changed")
    if ok and want is None:
        raise InvariantError("the board accepted a payload the host applier refuses")
    if want is not None and not ok:
        raise InvariantError("the board refused a payload the host applier accepts")
    if ok and bytes(port.flash[: len(want)]) != want:
        raise InvariantError("the slot holds other bytes than the target")


def seeds() -> list[bytes]:
    old, new = base(), target()
    patch = hd.make(old, new, 1)
    ops = patch[hd.DESC_SIZE :]
    return [
        b"\x00" + len(new).to_bytes(2, "little") + ops,  # a whole release
        b"\x01" + patch,  # the same, descriptor and all
        b"\x00\x00\x01" + hd._varint(64 << 2 | hd.OP_COPY) + hd._varint(hd._zigzag(-9) << 2 | 3),
        b"\x00\x40\x00" + hd._varint(64 << 2 | hd.OP_INSERT) + bytes(range(64)),
        b"\x01" + patch[: len(patch) // 2],  # truncated
    ]
