"""Delta updates through the whole agent on the fake board (CPython): the target ends up
running; another base, a wrong target, a target past the slot and power cuts."""

from __future__ import annotations

import hashlib
import json
import struct

import agent_util as U
import harness as H
import pytest
from fakes import fake_app
from hanota.image import delta as hd
from hanota.image.build import Target, build
from otaclient import zcl

V1, V2 = 0x01000000, 0x01000100
SIZE = 150_000


def _target(base: bytes, version: int = V2) -> bytes:
    """The base with a new header version, a few changed words and an inserted block."""
    b = bytearray(base)
    struct.pack_into("<I", b, 4, version)
    for at in range(5000, len(b), 9973):
        b[at : at + 4] = b"NEW!"
    b[60000:60000] = bytes(range(256)) * 3
    return bytes(b)


def _files(payload: bytes, compress=True, version=V2):
    t = Target(U.MFR, U.ITYPE, version, U.HW, U.HW, 0)
    return [d for _n, d in build(payload, t, U.mkey(), compress=compress, delta=True)]


def _board(tmp_path, files, factory, **kw):
    port, dbl = H.make(str(tmp_path), files, U.store(), factory=factory, **kw)
    dbl.device_pub = U.device_pub()
    dbl.eui64 = U.EUI64
    return port, dbl


def _slot(port, slot, n):
    buf = bytearray(n)
    port.slots[slot]._read(0, buf)
    return bytes(buf)


def _flash_ops(port):
    return [op for op in port.oplog if op[0] in ("erase", "write")]


def _ends(dbl):
    return [e[1] for e in dbl.events if e[0] == "end"]


@pytest.fixture(scope="module")
def base():
    return fake_app(V1, SIZE)


@pytest.mark.parametrize("compress", [True, False])
def test_a_delta_update_runs_the_target_bytes(tmp_path, base, compress):
    target = _target(base)
    files = _files(hd.make(base, target, V1), compress)
    assert len(files[0]) < SIZE // 20  # what travels: a few percent of the target
    port, dbl = _board(tmp_path, files, base)
    H.run(port, lambda a: port.running_version() == V2 and not a.state.get("alerts"))
    assert _ends(dbl) == [zcl.SUCCESS]
    assert port.active == 1 and _slot(port, 1, len(target)) == target
    assert _slot(port, 0, len(base)) == base  # the base was only ever read
    assert ("announce", V2, zcl.BOOT_ACTIVATED) in dbl.events


def test_a_delta_for_another_base_is_refused_and_nothing_is_written(tmp_path, base):
    other = bytearray(base)
    other[1000] ^= 0xFF  # same version, other bytes
    files = _files(hd.make(base, _target(base), V1))
    port, dbl = _board(tmp_path, files, bytes(other))
    H.run(port, lambda a: bool(_ends(dbl)), limit_ms=120_000)
    assert _ends(dbl) == [zcl.INVALID_IMAGE]
    assert _flash_ops(port) == [] and port.store.get("progress.json") is None
    assert any("not its base" in m for m in port.logs), port.logs
    assert port.running_version() == V1 and _slot(port, 0, len(other)) == other


def test_staged_progress_of_another_image_stays_when_a_delta_is_refused(tmp_path, base):
    """A full image partly staged, then a (newer) delta for another base: refused in the
    proof pass, before its first write; the staged fragment stays recorded."""
    full = U.images(fake_app(V2, 300_000), V2, max_size=120_000)
    other = bytes([base[0]]) + bytes(base[1:100]) + b"\x00" + base[101:]
    newer = _files(hd.make(base, _target(base, V2 + 1), V1), version=V2 + 1)
    port, dbl = _board(tmp_path, full[:1], other)
    H.run(port, lambda a: port.store.get("progress.json") is not None, limit_ms=120_000)
    staged = json.loads(port.store.get("progress.json"))
    ops = _flash_ops(port)
    dbl.files = newer
    dbl.__init__(newer)
    dbl.device_pub, dbl.eui64 = U.device_pub(), U.EUI64
    H.run(port, lambda a: zcl.INVALID_IMAGE in _ends(dbl), limit_ms=600_000)
    assert json.loads(port.store.get("progress.json")) == staged
    assert _flash_ops(port) == ops and port.running_version() == V1


def test_a_delta_whose_target_digest_is_wrong_is_never_activated(tmp_path, base):
    target = _target(base)
    patch = bytearray(hd.make(base, target, V1))
    patch[52] ^= 1  # the descriptor's target SHA-256 (signed with the rest)
    port, dbl = _board(tmp_path, _files(bytes(patch)), base)
    H.run(port, lambda a: bool(_ends(dbl)), limit_ms=120_000)
    assert _ends(dbl) == [zcl.INVALID_IMAGE]
    assert port.running_version() == V1 and not port.pending
    assert any("SLOT_DIGEST" in m for m in port.logs), port.logs


def test_a_delta_whose_target_is_larger_than_the_slot_is_refused_unwritten(tmp_path, base):
    big = base + bytes(70_000)
    files = _files(hd.make(base, big, V1))
    port, dbl = _board(tmp_path, files, base, slot_size=200_704)
    H.run(port, lambda a: bool(_ends(dbl)), limit_ms=120_000)
    assert _ends(dbl) == [zcl.INVALID_IMAGE] and _flash_ops(port) == []
    assert any("BAD_DELTA" in m for m in port.logs), port.logs


@pytest.mark.parametrize("cut", [0, 3, 20, 38, 40])
def test_a_power_cut_during_a_delta_restarts_it_and_it_completes(tmp_path, base, cut):
    target = _target(base)
    port, dbl = _board(tmp_path, _files(hd.make(base, target, V1)), base)
    H.run(port, lambda a: port.running_version() == V2 and not a.state.get("alerts"), cuts=[cut])
    assert "cut" in [b[0] for b in port.boots]
    slot = port.active
    assert _slot(port, slot, len(target)) == target
    assert (
        hashlib.sha256(_slot(port, 1 - slot, len(base))).digest() == hashlib.sha256(base).digest()
    )
