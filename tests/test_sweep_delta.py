"""The power-cut sweep's delta update: its plan, the old-slot invariant, and a quick run on
sim boards (board started with the delta's base, one delta file, cuts in the apply, at its
record and in activation)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hanota import paths
from hanota.sweep import invariants, plan
from hanota.sweep.updates import UPDATES


def _facts(old_sha: str, now_sha: str) -> dict:
    boots = [{"slot": 0, "version": 1, "trial": False}]
    return {"boots": boots, "error": None, "timed_out": False, "halted": None,
            "bad_events": [], "running": {"slot": 0, "version": 1},
            "running_app": {"version": 1, "sha": "aa"},
            "next_boot": {"slot": 0, "version": 1, "trial": False},
            "old": {"version": 1, "sha": "aa", "slot": 0, "slot_sha": old_sha},
            "old_slot_sha": now_sha, "reported": 1, "activation": "none",
            "transfer": "failed", "sent": 0, "power_cuts": 0, "power_cycles": 0, "ops": 0,
            "agent_crashes": 0}  # fmt: skip


def test_old_slot_written_during_the_update_fails_the_run():
    exp = {"old_version": 1, "new_version": 2, "new_sha": "bb", "sizes": [100],
           "outcomes": ["refused"], "cuts": [], "min_cycles": 0}  # fmt: skip
    assert invariants.check(_facts("11", "11"), exp)["old_slot_never_written"] is None
    why = invariants.check(_facts("11", "22"), exp)["old_slot_never_written"]
    assert why == "ota_0 (the old app's slot) was written during the update"


def test_delta_update_is_its_own_image_and_quick_picks_apply_record_and_activation():
    d = UPDATES["delta"]
    assert d.delta and d.ref_key not in {u.ref_key for u in UPDATES.values() if u is not d}
    m = plan.OpMap.from_marks(100, [("fragment-held", 60), ("transfer-complete", 62),
                                    ("reset", 80)])  # fmt: skip
    assert plan.quick_ops(d, m) == [30, 60, 80]
    every = plan.cases(d, m, ranges=None, quick=False, seed=1, runs=1)
    assert [c["cuts"] for c in every] == [[i] for i in range(1, 101)]


@pytest.mark.sim
@pytest.mark.skipif(not (paths.FIRMWARE / "main.py").is_file(), reason="agent not built")
def test_quick_delta_sweep_survives(tmp_path):
    cmd = [sys.executable, "-m", "hanota.sweep", "--workdir", str(tmp_path / "sweep"),
           "--update", "delta", "--quick", "--json", "--jobs", "2", "--size", "80000",
           "--timeout", "20"]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    u = json.loads(res.stdout)["updates"]["delta"]
    assert u["delta"] and u["fragments"] == 1 and u["file_bytes"][0] < 2000
    assert u["reference"]["survived"] and u["tried"] == u["survived"] >= 3
