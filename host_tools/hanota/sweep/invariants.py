"""The QUALITY.md invariants over the facts of one run (cutrun.collect), as pure functions.

`check(facts, expect)` -> {name: None if it holds, else why}. `expect`:
  old_version, new_version, new_sha   the image before and the one submitted
  sizes                               OTA file bytes of each fragment
  outcomes                            outcomes that count as "finished or stopped cleanly"
  cuts, min_cycles                    planned cut ops (each one the run reached must have
                                      happened, at least one); power cycles that must happen
  untouched                           True: the update must change nothing on flash (refused)
"""

from __future__ import annotations

from typing import Any

# a cut may also cost the page in flight and, after a fragment whose end the hub has not
# heard of, one page to recognise the fragment as staged (docs/agent.md)
PAGE = 4096
CLEAN = ("updated", "rolled-back", "not-activated", "refused")


def outcome(f: dict[str, Any]) -> str:
    """updated | rolled-back | refused | not-activated | stuck | broken | ended."""
    if not f.get("boots"):
        return "broken"
    if f["error"] and not f["timed_out"]:
        return "broken"
    if f.get("activation") == "failure":
        return "rolled-back"
    if f.get("activation") == "success":
        return "updated"
    if f.get("transfer") == "failed":
        return "refused"
    if f["timed_out"]:
        # every fragment staged, the CH waits for an activation that the device dropped
        return "not-activated" if f.get("transfer") == "complete" else "stuck"
    return "ended"


def check(f: dict[str, Any], exp: dict[str, Any]) -> dict[str, str | None]:
    if not f.get("boots"):
        return {"board_ran": f.get("error") or "the board never booted"}
    return {
        "boots_verified_image": _verified(f),
        "old_or_new_never_a_mix": _old_or_new(f, exp),
        "reported_matches_running": _reported(f),
        "version_matches_outcome": _version_outcome(f, exp),
        "resume_loses_at_most_one_fragment": _resume(f, exp),
        "failed_trial_boot_reported": _trial_reported(f, exp),
        "finished_or_stopped_cleanly": _ended(f, exp),
        "cuts_happened": _cuts(f, exp),
        "flash_untouched": _untouched(f, exp),
        "old_slot_never_written": _old_slot(f),
        "agent_never_crashed": _no_crash(f),
    }


def _verified(f: dict[str, Any]) -> str | None:
    if f.get("halted"):
        return f"board halted: {f['halted']}"
    if f.get("bad_events"):
        return f"bootloader refused an app: {f['bad_events'][0]}"
    app, nxt, run = f.get("running_app", {}), f.get("next_boot", {}), f.get("running", {})
    if "error" in app:
        return f"running slot ota_{run.get('slot')} does not verify: {app['error']}"
    if "error" in nxt:
        return f"a power-on now would not boot: {nxt['error']}"
    if (f"ota_{run.get('slot')}", run.get("version")) != (f"ota_{nxt['slot']}", nxt["version"]):
        return f"a power-on now would boot ota_{nxt['slot']} v{nxt['version']:#x}, not what runs"
    if nxt.get("trial"):
        return "left on an unconfirmed trial boot"
    return None


def _old_or_new(f: dict[str, Any], exp: dict[str, Any]) -> str | None:
    old = f.get("old") or {}
    if "error" in old or "sha" not in old:
        return f"the factory app could not be read before the update: {old.get('error')}"
    known = {old["version"]: old["sha"], exp["new_version"]: exp["new_sha"]}
    for b in f["boots"]:
        if b["version"] not in known:
            return f"booted version {b['version']:#x}, neither old nor new"
    app = f.get("running_app", {})
    if app.get("version") not in known:
        return f"running app version {app.get('version')!r} is neither old nor new"
    if app["sha"] != known[app["version"]]:
        return f"running app v{app['version']:#x} is not the image of that version (a mix)"
    return None


def _reported(f: dict[str, Any]) -> str | None:
    running = f["running"]["version"]
    if f.get("reported") != running:
        return f"CH has {_v(f.get('reported'))}, board runs {_v(running)}"
    return None


def _version_outcome(f: dict[str, Any], exp: dict[str, Any]) -> str | None:
    running = f["running"]["version"]
    want = exp["new_version"] if f.get("activation") == "success" else exp["old_version"]
    if running != want:
        return f"activation {f.get('activation')!r} but the board runs {_v(running)}"
    return None


def _trial_reported(f: dict[str, Any], exp: dict[str, Any]) -> str | None:
    """QUALITY.md, trial boot: a new image that booted on trial and was rolled back is
    reported to the CH as a failed activation."""
    tried = any(b["trial"] and b["version"] == exp["new_version"] for b in f["boots"])
    if tried and f["running"]["version"] != exp["new_version"] and f.get("activation") != "failure":
        return (
            f"the new image had a trial boot and was rolled back, CH told {f.get('activation')!r}"
        )
    return None


def _resume(f: dict[str, Any], exp: dict[str, Any]) -> str | None:
    cuts = f.get("power_cuts", 0) + f.get("power_cycles", 0)
    sizes = exp["sizes"]
    limit = sum(sizes) + cuts * (max(sizes) + PAGE)
    if f.get("sent", 0) > limit:
        extra = f["sent"] - sum(sizes)
        return f"{f['sent']} bytes served: {extra} re-sent after {cuts} cut(s), limit {limit}"
    return None


def _ended(f: dict[str, Any], exp: dict[str, Any]) -> str | None:
    got = outcome(f)
    if got not in exp["outcomes"]:
        return f"outcome {got} ({f.get('error') or 'no error'}), want one of {exp['outcomes']}"
    if not f["timed_out"] and f.get("alerts_pending"):
        return f"{f['alerts_pending']} alert(s) still pending at the CH"
    return None


def _cuts(f: dict[str, Any], exp: dict[str, Any]) -> str | None:
    planned = exp.get("cuts") or []
    reached = [c for c in planned if c <= f.get("ops", 0)]
    want = max(len(reached), 1) if planned else 0
    if f.get("power_cuts", 0) != want:
        return f"{f.get('power_cuts', 0)} power cut(s) happened, planned {planned}"
    if f.get("power_cycles", 0) < exp.get("min_cycles", 0):
        return f"{f.get('power_cycles', 0)} power cycle(s) happened, planned {exp['min_cycles']}"
    return None


def _untouched(f: dict[str, Any], exp: dict[str, Any]) -> str | None:
    if exp.get("untouched") and f.get("ops", 0):
        return f"{f['ops']} flash operation(s) for an update that must change nothing"
    return None


def _old_slot(f: dict[str, Any]) -> str | None:
    """The slot the board ran when the update began is read (a delta's base), never written:
    its partition hashes as it did before the first cut."""
    before, now = (f.get("old") or {}).get("slot_sha"), f.get("old_slot_sha")
    if before is not None and now != before:
        return f"ota_{f['old']['slot']} (the old app's slot) was written during the update"
    return None


def _no_crash(f: dict[str, Any]) -> str | None:
    """A power cut may leave any state the flash can hold; the agent must take each one
    in its stride. A crash restarts it (main.py), which hides the defect from the other
    checks, so any `agent: crashed` line on the console fails the run."""
    if f.get("agent_crashes"):
        return f"the agent crashed {f['agent_crashes']} time(s), first: {f['first_crash']}"
    return None


def _v(v: int | None) -> str:
    return "nothing" if v is None else f"v{v:#010x}"
