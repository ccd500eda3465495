"""The power-cut sweep (hanota.sweep): the quick subset end to end on sim boards with the
real MicroPython agent, and the invariant checker fed good and bad outcomes."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys

import pytest
from hanota import paths
from hanota.sweep import invariants, plan
from hanota.sweep.updates import UPDATES

LAST = re.compile(r"^sweep: (\d+) cuts tried, (\d+) survived, (\d+) flash operations$")
V1, V2 = 0x01000000, 0x02000000
OLD, NEW = "aa" * 32, "bb" * 32

sim = pytest.mark.skipif(
    not (paths.FIRMWARE / "main.py").is_file(), reason="the agent (firmware/main.py) is not built"
)


def sweep(tmp_path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "hanota.sweep", "--workdir", str(tmp_path / "sweep"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


# --- end to end ---------------------------------------------------------------------------


QUICK = ["plain", "rollback", "multi"]  # compressed, half, second: their own tests below


@sim
@pytest.mark.sim
def test_quick_sweep_survives(tmp_path):
    args = [a for name in QUICK for a in ("--update", name)]
    res = sweep(tmp_path, "--quick", "--json", "--jobs", "2", "--timeout", "25", *args)
    doc = json.loads(res.stdout)  # exactly one JSON document
    assert res.returncode == 0, (res.stderr[-3000:], doc["failures"])
    last = res.stderr.strip().splitlines()[-1]
    m = LAST.match(last)
    assert m and last == doc["line"], last
    assert "\x1b" not in res.stderr
    tried, survived, ops = map(int, m.groups())
    assert (tried, survived) == (doc["tried"], doc["survived"]) and tried == survived >= 7
    u = doc["updates"]
    assert list(u) == QUICK
    assert ops == u["plain"]["ops"] + u["rollback"]["ops"]  # multi sweeps plain's image
    assert u["plain"]["fragments"] >= 3 and not u["plain"]["compressed"]
    assert 100 < u["plain"]["ops"] < 1000, u["plain"]["ops"]  # 1 KB-buffered writes
    assert {"transfer", "activation", "trial boot"} <= set(u["plain"]["by_phase"])
    assert "rollback" in u["rollback"]["by_phase"]
    assert u["rollback"]["reference"]["outcome"] == "rolled-back"
    assert doc["power_cuts"] >= tried
    assert doc["heap"]  # the board's own heap, whatever it is


@sim
@pytest.mark.sim
def test_quick_second_update_from_ota_1_survives(tmp_path):
    # the board took one update (V2 runs from ota_1, otadata's second sector holds it);
    # V3 goes to ota_0 over the factory app, cut in transfer, activation and trial boot
    res = sweep(tmp_path, "--quick", "--json", "--jobs", "2", "--timeout", "10",
                "--update", "second")  # fmt: skip
    doc = json.loads(res.stdout)
    assert res.returncode == 0, doc["failures"]
    u = doc["updates"]["second"]
    assert u["start"] == "updated-once" and u["tried"] == u["survived"] >= 4
    assert u["reference"]["outcome"] == "updated"
    assert {"transfer", "activation", "trial boot"} <= set(u["by_phase"])
    assert "start state updated-once: v0x2000000 runs" in res.stderr


@sim
@pytest.mark.sim
def test_quick_sweep_compressed_survives(tmp_path):
    res = sweep(tmp_path, "--quick", "--json", "--jobs", "2", "--timeout", "10",
                "--update", "compressed")  # fmt: skip
    doc = json.loads(res.stdout)
    assert res.returncode == 0, doc["failures"]
    u = doc["updates"]["compressed"]
    assert u["compressed"] and u["fragments"] >= 3 and u["tried"] == u["survived"] >= 2


@sim
@pytest.mark.sim
def test_cut_in_the_armed_record_then_a_crashing_trial_boot_is_reported(tmp_path):
    ref = json.loads(sweep(tmp_path, "--update", "rollback:999999", "--json").stdout)
    phases = {name: (a, b) for name, a, b in ref["updates"]["rollback"]["op_map"]["phases"]}
    op = phases["activation"][1] - 1  # the armed record is the activation's last write
    res = sweep(tmp_path, "--update", f"rollback:{op}", "--json", "--timeout", "12")
    doc = json.loads(res.stdout)
    assert doc["tried"] == 1 and doc["ok"], doc["failures"]


@sim
@pytest.mark.sim
def test_quick_half_provisioned_power_cycles_survive_at_64k(tmp_path):
    # --heap: every board of the sweep at that heap (here QUALITY.md's 64k)
    res = sweep(tmp_path, "--quick", "--json", "--update", "half", "--timeout", "8",
                "--heap", "64k")  # fmt: skip
    doc = json.loads(res.stdout)
    assert doc["heap"] == "64k" and "(heap 64k)" in res.stderr
    u = doc["updates"]["half"]
    assert u["ops"] == 0 and doc["power_cycles"] >= 1
    assert res.returncode == 0 and u["outcomes"] == {"refused": u["tried"]}, doc["failures"]


@sim
@pytest.mark.sim
def test_sweep_without_json_ends_with_the_summary_line(tmp_path):
    res = sweep(tmp_path, "--update", "plain:100")
    assert res.returncode == 0, res.stderr[-2000:]
    lines = res.stdout.strip().splitlines()
    m = LAST.match(lines[-1]) if lines else None
    assert m and m.groups()[:2] == ("1", "1") and int(m.group(3)) > 100, lines


@sim
@pytest.mark.sim
def test_a_run_that_does_not_finish_fails_the_sweep(tmp_path):
    res = sweep(tmp_path, "--update", "plain:1", "--timeout", "0.01", "--json")
    doc = json.loads(res.stdout)
    assert res.returncode == 1 and not doc["ok"]
    assert doc["failures"] and doc["survived"] < doc["tried"] + 1
    fail = doc["failures"][0]
    assert fail["outcome"] == "stuck" and "finished_or_stopped_cleanly" in fail["failed"]
    assert fail["repro"].startswith("python -m hanota.sweep")
    assert LAST.match(res.stderr.strip().splitlines()[-1])


def test_unknown_update_is_a_usage_error(tmp_path):
    res = sweep(tmp_path, "--update", "nosuch")
    assert res.returncode == 2 and "unknown update" in res.stderr


def test_an_app_size_below_the_app_is_a_usage_error(tmp_path):
    res = sweep(tmp_path, "--size", "1000", "--quick")
    assert res.returncode == 2 and "smaller than the app itself" in res.stderr
    assert "Traceback" not in res.stderr, res.stderr


# --- the invariant checker ----------------------------------------------------------------

EXPECT = {"old_version": V1, "new_version": V2, "new_sha": NEW, "sizes": [78000, 78000, 60000],
          "outcomes": ["updated", "rolled-back", "not-activated"], "cuts": [40],
          "min_cycles": 0, "untouched": False}  # fmt: skip


def good() -> dict:
    """The facts of a run cut at op 40 that resumed and activated the new image."""
    return {
        "error": None, "timed_out": False, "old": {"version": V1, "sha": OLD},
        "boots": [{"slot": "ota_0", "version": V1, "trial": False},
                  {"slot": "ota_0", "version": V1, "trial": False},
                  {"slot": "ota_1", "version": V2, "trial": True}],
        "bad_events": [], "halted": None, "power_cuts": 1, "power_cycles": 0, "ops": 230,
        "running": {"slot": 1, "version": V2},
        "running_app": {"version": V2, "sha": NEW},
        "next_boot": {"slot": 1, "version": V2, "trial": False},
        "reported": V2, "transfer": "closed", "sent": 216000 + 50000,
        "activation": "success", "alerts_pending": 0,
    }  # fmt: skip


def failed(facts: dict, exp: dict = EXPECT) -> set[str]:
    return {k for k, v in invariants.check(facts, exp).items() if v is not None}


def bad(**changes) -> dict:
    f = copy.deepcopy(good())
    for k, v in changes.items():
        f[k] = v
    return f


def test_a_good_run_passes_every_invariant():
    assert failed(good()) == set()
    assert invariants.outcome(good()) == "updated"


@pytest.mark.parametrize(
    "facts,broken",
    [
        (bad(running_app={"version": V2, "sha": "cc" * 32}), "old_or_new_never_a_mix"),
        (bad(running_app={"error": "app hash mismatch"}), "boots_verified_image"),
        (bad(boots=[{"slot": "ota_1", "version": 0x01500000, "trial": True}]),
         "old_or_new_never_a_mix"),
        (bad(old={"error": "not a sim app"}), "old_or_new_never_a_mix"),
        (bad(reported=V1), "reported_matches_running"),
        (bad(reported=None), "reported_matches_running"),
        (bad(bad_events=[{"event": "bad_app", "slot": "ota_1"}]), "boots_verified_image"),
        (bad(halted="no bootable app"), "boots_verified_image"),
        (bad(next_boot={"error": "no bootable app"}), "boots_verified_image"),
        (bad(next_boot={"slot": 0, "version": V1, "trial": False}), "boots_verified_image"),
        (bad(next_boot={"slot": 1, "version": V2, "trial": True}), "boots_verified_image"),
        (bad(activation="none", transfer="closed"), "version_matches_outcome"),
        (bad(activation="failure"), "version_matches_outcome"),
        (bad(sent=216000 + 78000 + 4096 + 1), "resume_loses_at_most_one_fragment"),
        (bad(timed_out=True, error="timed out", transfer="transferring", activation="none",
             running={"slot": 0, "version": V1}, reported=V1,
             running_app={"version": V1, "sha": OLD},
             next_boot={"slot": 0, "version": V1, "trial": False}),
         "finished_or_stopped_cleanly"),
        (bad(alerts_pending=2), "finished_or_stopped_cleanly"),
        (bad(error="OSError: pty gone"), "finished_or_stopped_cleanly"),
        (bad(power_cuts=0), "cuts_happened"),
        (bad(agent_crashes=1, first_crash="agent: crashed: MemoryError(...)"),
         "agent_never_crashed"),
        (bad(activation="none", timed_out=True, error="timed out", transfer="complete",
             running={"slot": 0, "version": V1}, reported=V1,
             running_app={"version": V1, "sha": OLD},
             next_boot={"slot": 0, "version": V1, "trial": False}),
         "failed_trial_boot_reported"),
    ],
)  # fmt: skip
def test_a_broken_invariant_is_caught(facts, broken):
    assert broken in failed(facts), invariants.check(facts, EXPECT)


def test_resume_bound_grows_with_each_cut():
    f = bad(sent=216000 + 2 * 78000, power_cuts=2)
    assert "resume_loses_at_most_one_fragment" not in failed(f, {**EXPECT, "cuts": [40, 90]})
    f["power_cuts"] = 1  # the same bytes after one cut: more than one fragment restarted
    assert "resume_loses_at_most_one_fragment" in failed(f, {**EXPECT, "cuts": [40, 9999]})


def test_later_cuts_beyond_the_run_need_not_happen_but_reached_ones_must():
    exp = {**EXPECT, "cuts": [40, 100, 5000]}
    assert "cuts_happened" not in failed(bad(power_cuts=2), exp)  # 5000 > 230 ops
    assert "cuts_happened" in failed(bad(power_cuts=1), exp)  # 100 was reached, no cut


def test_dropped_activation_is_clean_only_while_the_board_runs_the_old_image():
    idle = bad(timed_out=True, error="timed out", transfer="complete", activation="none",
               boots=[{"slot": "ota_0", "version": V1, "trial": False}] * 2,
               running={"slot": 0, "version": V1}, reported=V1,
               running_app={"version": V1, "sha": OLD},
               next_boot={"slot": 0, "version": V1, "trial": False})  # fmt: skip
    assert invariants.outcome(idle) == "not-activated" and failed(idle) == set()
    assert "reported_matches_running" in failed({**idle, "reported": V2})


def test_refused_update_must_leave_flash_untouched():
    exp = {**EXPECT, "outcomes": ["refused"], "cuts": [], "untouched": True}
    f = bad(transfer="failed", activation="none", running={"slot": 0, "version": V1},
            boots=[{"slot": "ota_0", "version": V1, "trial": False}],
            reported=V1, running_app={"version": V1, "sha": OLD}, power_cuts=0, ops=0,
            next_boot={"slot": 0, "version": V1, "trial": False}, sent=4080)  # fmt: skip
    assert invariants.outcome(f) == "refused" and failed(f, exp) == set()
    assert failed({**f, "ops": 6}, exp) == {"flash_untouched"}
    assert "finished_or_stopped_cleanly" in failed(good(), exp)  # updated is not refused


def test_board_that_never_booted_fails():
    assert failed({"error": "the board never came up", "timed_out": False}) == {"board_ran"}


# --- planning -------------------------------------------------------------------------------

MARKS = [("fragment-held", 44), ("fragment-held", 88), ("fragment-held", 132),
         ("transfer-complete", 132), ("reset", 140)]  # fmt: skip


def test_op_map_phases_cover_every_op_once():
    m = plan.OpMap.from_marks(155, MARKS)
    assert m.phases == [("fragment 0", 1, 44), ("fragment 1", 45, 88), ("fragment 2", 89, 132),
                        ("activation", 133, 140), ("trial boot", 141, 155)]  # fmt: skip
    assert m.phase(140) == "activation" and m.transfer_end() == 132
    crash = plan.OpMap.from_marks(150, MARKS + [("watchdog", 140)])
    assert crash.phases[-1] == ("rollback", 141, 150)


def test_cases_every_op_ranges_quick_and_seeded_runs():
    m = plan.OpMap.from_marks(155, MARKS)
    every = plan.cases(UPDATES["plain"], m, ranges=None, quick=False, seed=1, runs=3)
    assert [c["cuts"] for c in every] == [[i] for i in range(1, 156)]
    some = plan.cases(UPDATES["plain"], m, ranges=plan.parse_ranges("3-5,150-"), quick=False,
                      seed=1, runs=3)  # fmt: skip
    assert [c["cuts"][0] for c in some] == [3, 4, 5, *range(150, 156)]
    after = plan.cases(UPDATES["rollback"], m, ranges=None, quick=False, seed=1, runs=3)
    assert after[0]["cuts"] == [133] and after[-1]["cuts"] == [155]
    quick = plan.cases(UPDATES["plain"], m, ranges=None, quick=True, seed=1, runs=3)
    assert {c["phase"] for c in quick} >= {"fragment 0", "activation", "trial boot"}
    multi = plan.cases(UPDATES["multi"], m, ranges=None, quick=False, seed=7, runs=5)
    again = plan.cases(UPDATES["multi"], m, ranges=None, quick=False, seed=7, runs=5)
    assert multi == again and len(multi) == 5
    assert all(len(c["cuts"]) >= 2 and c["cuts"] == sorted(set(c["cuts"])) for c in multi)
    with pytest.raises(ValueError):
        plan.parse_ranges("9-3")
