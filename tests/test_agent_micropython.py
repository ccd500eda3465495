"""The agent under the real MicroPython unix port (fake board and CH double in-process).

Code is precompiled with mpy-cross (as a board ships it) and loaded from a directory, so
its bytecode sits in the heap, beside the test fixtures: the runs use 256k, and the figure
held to QUALITY.md here is the live heap above idle at every block/fragment boundary.
QUALITY.md's 64k is tried on a sim board, where modules execute in place from the mapped
slot (test_agent_sim.py).
"""

from __future__ import annotations

import agent_util as U
import pytest
from fakes import fake_app
from mpy_agent import run_agent_mpy

pytestmark = pytest.mark.micropython
V2 = 0x01000100
_BUDGET = 16 * 1024


def _peak(tmp_path, size, **kw):
    files = U.images(fake_app(V2, size), V2)
    r = run_agent_mpy(tmp_path, files, U.store(), V2, slot=3 << 20, heap="256k", **kw)
    assert r["boots"] == [["reset", None], ["trial", V2]]
    assert r["alerts"] == [[0, V2], [0, V2]]
    assert r["activation_loaded"] is False  # otaclient.let_go: not held during a transfer
    assert r["p256_loaded"] is False  # image.p256_call loads it per verify, then lets go
    return r, len(files)


def _above_idle(tmp_path, size):
    # MicroPython's collector scans the C stack conservatively: a stale word there keeps a
    # dead object alive at a boundary, by chance of where objects landed (the run's paths
    # are heap strings, so a longer temp path moves them). That only ever adds: of three
    # runs under three layouts (directory names of 1, 9 and 17 characters), the smallest
    # peak is the agent's own.
    out = []
    for name in ("a", "b" * 9, "c" * 17):
        (tmp_path / name).mkdir()
        r, n = _peak(tmp_path / name, size)
        out.append((r["peak"] - r["idle"], n))
    return min(out)


def test_heap_above_idle_is_bounded_and_flat_from_100k_to_2m(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "l").mkdir()
    ds, _ = _above_idle(tmp_path / "s", 100_000)
    dl, n = _above_idle(tmp_path / "l", 2_100_000)
    assert n == 3  # fragmented: three files of <= 750,000 bytes
    assert ds <= _BUDGET and dl <= _BUDGET, (ds, dl)
    assert abs(dl - ds) <= 2048, (ds, dl)  # no growth with image size


def test_crashing_app_rolls_back_and_is_reported_under_micropython(tmp_path):
    files = U.images(fake_app(V2, 50_000, crash=True), V2)
    r = run_agent_mpy(tmp_path, files, U.store(), U.V1, heap="256k", boots=4, measure=False)
    assert [b[0] for b in r["boots"][:4]] == ["reset", "trial", "crash", "rollback"]
    assert [1, U.V1] in r["alerts"]


def test_power_cut_resumes_under_micropython(tmp_path):
    files = U.images(fake_app(V2, 300_000), V2, max_size=120_000)
    r = run_agent_mpy(tmp_path, files, U.store(), V2, heap="256k", cuts=[60], measure=False)
    assert r["boots"][0][0] == "cut"
    assert r["served"] <= sum(map(len, files)) + max(map(len, files)) + 4096


def test_refusals_under_micropython(tmp_path):
    """Unknown key and counter lower: INVALID_IMAGE, nothing staged (then a good image)."""
    from hanota.image.keys import generate

    bad = U.images(fake_app(V2, 20_000), V2, key=generate())
    low = U.images(fake_app(V2, 20_000), V2, counter=1)
    good = U.images(fake_app(V2, 20_000), V2, counter=5)
    store = U.store(extra={"agent.json": {"sec_counter": 5}})
    r = run_agent_mpy(tmp_path, bad + low + good, store, V2, heap="256k", measure=False)
    ends = [e[1] for e in r["events"] if e[0] == "end"]
    assert ends == [0x96, 0x96, 0x00]
