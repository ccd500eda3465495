"""Reassembly unit tests: sector-buffered staging, progress, abort, slot read-back."""

from __future__ import annotations

import hashlib
import json

import harness as H
import pytest
from fakes import FakePort, fake_app
from hypothesis import given, settings
from hypothesis import strategies as st
from otaclient.imagefmt import Manifest
from otaclient.policy import PolicyError
from otaclient.reassembly import Reassembly


def M(version, sha, total, count, counter, index, offset, length):  # noqa: N802 (a record)
    # what reassembly reads of a manifest; the rest as an image of one key would have it
    return Manifest(1, 0x1234, 1, 0, 0xFFFF, version, counter, 1, length, sha, False,
                    index, count, offset, length, total, bytes(16))  # fmt: skip


def _port(tmp_path, slot=1 << 18):
    return FakePort(H.BOARD, {}, str(tmp_path), slot)


def _frags(fw, size):
    digest = hashlib.sha256(fw).digest()
    n = (len(fw) + size - 1) // size
    return [
        M(2, digest, len(fw), n, 0, i, i * size, min(size, len(fw) - i * size)) for i in range(n)
    ]


def _sink_all(r, m, fw, chunk=255):
    for off in range(m.fragment_offset, m.fragment_offset + m.fragment_length, chunk):
        end = min(off + chunk, m.fragment_offset + m.fragment_length)
        r.sink(off, memoryview(fw)[off:end])


def _stage(r, m, fw, chunk=255):
    assert r.begin(m)
    _sink_all(r, m, fw, chunk)
    return r.finish(m)


def test_whole_firmware_staged_with_one_erase_and_write_per_sector(tmp_path):
    port = _port(tmp_path)
    fw = fake_app(2, 50_000)
    r = Reassembly(port, bytearray(4096))
    done = [_stage(r, m, fw) for m in _frags(fw, 16384)]
    assert done == [False, False, False, True]
    r.verify_slot()
    kinds = [op[0] for op in port.oplog]
    assert kinds.count("erase") == kinds.count("write") == 13  # ceil(50000 / 4096)
    assert kinds.count("put") == 4


@pytest.mark.bad_input("duplicate-fragment")
def test_progress_survives_a_new_instance_and_duplicates_are_skipped(tmp_path):
    port = _port(tmp_path)
    fw = fake_app(2, 20_000)
    frags = _frags(fw, 8192)
    _stage(Reassembly(port, bytearray(4096)), frags[1], fw)
    r = Reassembly(port, bytearray(4096))
    assert r.begin(frags[1]) is False
    assert json.loads(port.store.get("progress.json"))["done"] == [[1, 8192, 8192]]


@pytest.mark.bad_input("duplicate-fragment", "fragment-other-image")
def test_overlapping_or_foreign_fragments_are_refused(tmp_path):
    port = _port(tmp_path)
    fw = fake_app(2, 20_000)
    frags = _frags(fw, 8192)
    r = Reassembly(port, bytearray(4096))
    _stage(r, frags[0], fw)
    with pytest.raises(PolicyError, match="BAD_FRAGMENT"):
        r.begin(frags[1]._replace(fragment_offset=4096))
    with pytest.raises(PolicyError, match="OTHER_IMAGE"):
        r.begin(frags[1]._replace(file_version=1))
    with pytest.raises(PolicyError, match="BAD_FRAGMENT"):
        r.begin(frags[1]._replace(total_length=1 << 20))  # beyond the slot


def test_abort_leaves_what_the_fragment_wrote_and_records_nothing(tmp_path):
    # the sink only ever gets authenticated chunks (the verifier's chain): an abort
    # drops the fragment, erases nothing back, and records it nowhere
    port = _port(tmp_path)
    fw = fake_app(2, 20_000)
    m = _frags(fw, 20_000)[0]
    r = Reassembly(port, bytearray(4096))
    r.begin(m)
    r.sink(0, memoryview(fw)[:10_000])
    ops = port.ops
    r.abort()
    assert port.ops == ops
    buf = bytearray(8192)
    port.read(0, buf)
    assert buf == fw[:8192]
    assert port.store.get("progress.json") is None and not r.complete()
    assert r.begin(m)  # fetched again, from its start


def test_slot_readback_catches_a_changed_flash_byte(tmp_path):
    port = _port(tmp_path)
    fw = fake_app(2, 10_000)
    r = Reassembly(port, bytearray(4096))
    _stage(r, _frags(fw, 10_000)[0], fw)
    f = port.slots[1].f
    f.seek(5000)
    f.write(b"\x00")
    with pytest.raises(PolicyError, match="SLOT_DIGEST"):
        r.verify_slot()


@settings(max_examples=25, deadline=None)
@given(order=st.permutations(range(5)), chunk=st.integers(1, 300))
def test_fragments_in_any_order_and_chunking_give_the_same_slot(tmp_path_factory, order, chunk):
    port = _port(tmp_path_factory.mktemp("r"))
    fw = fake_app(2, 4096 * 4 + 100, seed=3)
    frags = _frags(fw, 4096)
    r = Reassembly(port, bytearray(4096))
    results = [_stage(r, frags[i], fw, chunk) for i in order]
    assert results == [False] * 4 + [True]
    r.verify_slot()


def _over_staged(tmp_path):
    """v2's fragment 0 staged; v3's fragment 0 (same sectors) to come."""
    port = _port(tmp_path)
    old, new = fake_app(2, 20_000), fake_app(3, 20_000, seed=9)
    r = Reassembly(port, bytearray(4096))
    _stage(r, _frags(old, 8192)[0], old)
    return port, r, old, new, _frags(new, 8192)[0]._replace(file_version=3)


def test_newer_fragment_over_a_staged_one_is_proven_before_it_is_written(tmp_path):
    """A proof pass: the newer firmware's fragment is verified without a flash operation
    (finish() -> None), and only the same fragment fetched again is written."""
    port, r, _old, new, m = _over_staged(tmp_path)
    staged = port.store.get("progress.json")
    ops = len(port.oplog)
    assert r.begin(m)
    _sink_all(r, m, new)
    r.scratch()
    assert r.finish(m) is None  # proven: nothing written, nothing recorded
    assert port.oplog[ops:] == [] and port.store.get("progress.json") == staged
    assert _stage(r, m, new) is False  # fetched again: written, the old fragment gone
    p = json.loads(port.store.get("progress.json"))
    assert p["v"] == 3 and p["done"] == [[0, 0, 8192]]
    buf = bytearray(8192)
    port.read(0, buf)
    assert buf == new[:8192]


def test_a_refused_proof_pass_leaves_the_staged_fragment(tmp_path):
    """A corrupt newer fragment fails its signature in the proof pass (the caller aborts):
    the staged fragment, its bytes and its progress are as they were."""
    port, r, old, new, m = _over_staged(tmp_path)
    staged = port.store.get("progress.json")
    assert r.begin(m)
    _sink_all(r, m, new)
    r.abort()  # what the client does when the signature fails
    assert port.store.get("progress.json") == staged
    buf = bytearray(8192)
    port.read(0, buf)
    assert buf == old[:8192]


def test_a_proof_is_for_one_file_and_is_spent_by_the_next_begin(tmp_path):
    _port, r, _old, new, m = _over_staged(tmp_path)
    assert r.begin(m)
    _sink_all(r, m, new)
    assert r.finish(m) is None
    other = m._replace(firmware_sha256=bytes(32))  # same version, index, range; other bytes
    assert r.begin(other)
    _sink_all(r, other, new)
    assert r.finish(other) is None  # proven again, not written
    assert r.begin(m)  # m's proof was spent by the begin above
    _sink_all(r, m, new)
    assert r.finish(m) is None


def test_newer_fragment_beside_the_staged_ones_is_written_at_once(tmp_path):
    """No overlap, no proof pass: the old fragments go only when the new one verifies."""
    port = _port(tmp_path)
    old, new = fake_app(2, 20_000), fake_app(3, 20_000, seed=9)
    r = Reassembly(port, bytearray(4096))
    _stage(r, _frags(old, 8192)[0], old)
    m = _frags(new, 8192)[1]._replace(file_version=3)
    assert _stage(r, m, new) is False
    p = json.loads(port.store.get("progress.json"))
    assert p["v"] == 3 and p["done"] == [[1, 8192, 8192]]
