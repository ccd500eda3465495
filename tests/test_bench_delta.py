"""`hanota bench --only delta`: its inputs and sizes, the board applier's run, the skip of
real pairs when PyPI cannot be reached, and the quick family end to end (JSON keys)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest
from hanota import paths
from hanota.bench import delta, deltapairs
from hanota.sim import appimage


def test_sizes_compare_whole_files_and_flag_one_file_deltas():
    rng = __import__("random").Random(6)
    base = rng.randbytes(60_000)
    target = base[:30_000] + b"edit" * 50 + base[30_000:]
    g = deltapairs.sizes(base, target)
    assert g["target"] == len(target) and g["one_file"]
    assert g["full"] > len(target)  # head, signature and links ride on top
    assert g["delta"] < 0.05 * g["full_z"]


@pytest.mark.skipif(not (paths.FIRMWARE / "main.py").is_file(), reason="agent not built")
def test_own_pairs_edit_one_module_and_every_otaclient_module(tmp_path):
    pairs = deltapairs.own_pairs(tmp_path)
    _la, base, one = pairs["a"]
    _lb, _base, many = pairs["b"]
    trees = [dict(appimage.unpack_tree(appimage.verify(x)[1])) for x in (base, one, many)]
    assert [appimage.parse_header(x).version for x in (base, one, many)] == [
        deltapairs.V1, deltapairs.V2, deltapairs.V2]  # fmt: skip
    changed_one = {p for p in trees[0] if trees[0][p] != trees[1][p]}
    changed_many = {p for p in trees[0] if trees[0][p] != trees[2][p]}
    assert changed_one == {"otaclient/alerts.mpy"}  # the tree holds modules compiled
    assert changed_many == {p for p in trees[0] if p.startswith("otaclient/")}


def test_real_pairs_are_skipped_with_a_reason_when_pip_cannot_download(tmp_path, monkeypatch):
    monkeypatch.setattr(deltapairs, "WHEELS", tmp_path / "wheels")

    def offline(cmd, **kw):
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution\n")

    monkeypatch.setattr(deltapairs.subprocess, "run", offline)
    got, skipped = deltapairs.real_pairs()
    assert got == {} and len(skipped) == len(deltapairs.REAL)
    assert all("skipped" in s and "No matching distribution" in s for s in skipped)


@pytest.mark.micropython
def test_board_applier_run_reports_speed_heap_and_checks_the_target(tmp_path):
    rng = __import__("random").Random(7)
    base = rng.randbytes(200_000)
    target = bytearray(base)
    for at in range(1000, len(target), 4099):
        target[at : at + 64] = rng.randbytes(64)  # new bytes: INSERT ops, a patch of KBs
    doc = delta.apply_speed(tmp_path, base, bytes(target))
    assert doc["sha"] == hashlib.sha256(target).hexdigest()
    assert doc["mbs"] > 0 and 0 < doc["peak"] < 8192


@pytest.mark.sim
@pytest.mark.skipif(not (paths.FIRMWARE / "main.py").is_file(), reason="agent not built")
def test_bench_delta_quick_json(tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "hanota.cli", "bench", "--only", "delta", "--quick", "--json",
         "--out", str(tmp_path / "b.md")],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    sec = json.loads(res.stdout)["sections"]["delta"]
    figs = sec["figures"]
    assert {"a_delta_pct", "b_delta_pct", "han_full_s", "han_delta_s", "apply_mbs",
            "peak_heap_delta"} <= set(figs)  # fmt: skip
    assert figs["a_delta_pct"]["bar"]["text"] == "≤ 3 %"
    assert figs["han_delta_s"]["value"] < figs["han_full_s"]["value"]
    han = sec["data"]["han"]
    assert han["delta"]["delta"] is True and han["full"]["delta"] is False
    assert "Delta updates" in (tmp_path / "b.md").read_text()
