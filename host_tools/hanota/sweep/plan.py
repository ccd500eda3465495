"""From a clean reference run to the cut cases: the op map (which phase each flash
operation belongs to) and the cases each update gets (every op, a range, the quick
picks, seeded multi-cut runs, power cycles at hub events).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from .invariants import CLEAN
from .updates import Update

CYCLES = [["transfer-start"], ["report"], ["report", "transfer-start"],
          ["transfer-start", "report"]]  # fmt: skip


@dataclass
class OpMap:
    """Phases of the reference run: [(name, first op, last op)], ops 1..total."""

    total: int
    phases: list[tuple[str, int, int]]

    @classmethod
    def from_marks(cls, total: int, marks: list[tuple[str, int]]) -> OpMap:
        """marks: (hub or board milestone, ops counted when it happened), in order."""
        cuts: list[tuple[str, int]] = []
        frag = 0
        for name, ops in marks:
            if name == "fragment-held":
                cuts.append((f"fragment {frag}", ops))
                frag += 1
            elif name == "transfer-complete":
                cuts.append(("transfer end", ops))
            elif name == "reset":
                cuts.append(("activation", ops))
            elif name == "watchdog":
                cuts.append(("trial boot", ops))
        tail = "rollback" if any(n == "watchdog" for n, _ in marks) else "trial boot"
        if not any(n == "reset" for n, _ in marks):
            tail = "after transfer" if marks else "update"
        phases, first = [], 1
        for name, last in cuts + [(tail, total)]:
            last = min(last, total)
            if last >= first:
                phases.append((name, first, last))
                first = last + 1
        return cls(total, phases)

    def phase(self, op: int) -> str:
        for name, first, last in self.phases:
            if first <= op <= last:
                return name
        return "beyond the reference run"

    def first(self, name: str) -> tuple[int, int] | None:
        for n, first, last in self.phases:
            if n == name:
                return first, last
        return None

    def transfer_end(self) -> int:
        """Last op of the transfer (fragments and the end of the transfer)."""
        ends = [last for n, _f, last in self.phases if n.startswith(("fragment", "transfer"))]
        return max(ends) if ends else 0

    def to_json(self) -> dict[str, Any]:
        return {"total": self.total, "phases": [list(p) for p in self.phases]}


def parse_ranges(text: str) -> list[tuple[int, int]]:
    """ "1-20,40,170-" -> [(1, 20), (40, 40), (170, inf)]; ValueError if malformed."""
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        a = int(lo) if lo else 1
        b = (int(hi) if hi else 10**9) if sep else a
        if a < 1 or b < a:
            raise ValueError(f"bad op range {part!r}")
        out.append((a, b))
    return out


def in_ranges(op: int, ranges: list[tuple[int, int]] | None) -> bool:
    return ranges is None or any(a <= op <= b for a, b in ranges)


def quick_ops(update: Update, m: OpMap) -> list[int]:
    """A few ops per phase that matter: mid-fragment, a fragment's end (its progress
    write), the last activation op, the first trial-boot op (the confirm erase), the end."""
    picks: list[int] = []
    if update.cuts == "after-transfer":  # the armed record (last activation op), a rollback op
        act, back = m.first("activation"), m.first("rollback")
        picks += [act[1]] if act else []
        picks += [back[0] + (back[1] - back[0]) // 2] if back else []
        return picks
    f0, f1 = m.first("fragment 0"), m.first("fragment 1")
    act, trial = m.first("activation"), m.first("trial boot")
    if update.delta:  # one file: mid-apply, its end (the whole-delta record), activation
        picks += [f0[0] + (f0[1] - f0[0]) // 2, f0[1]] if f0 else []
        picks += [act[1]] if act else []
        return [p for p in picks if 1 <= p <= m.total]
    if update.compress:
        picks += [f1[0] + (f1[1] - f1[0]) // 2] if f1 else []
        picks += [trial[0] + 2] if trial else []
        return [p for p in picks if 1 <= p <= m.total]
    picks += [f0[0] + (f0[1] - f0[0]) // 2] if f0 else []
    picks += [f1[1]] if f1 else []
    picks += [act[1]] if act else []
    picks += [trial[0]] if trial else []
    return [p for p in picks if 1 <= p <= m.total]


def cases(update: Update, m: OpMap, *, ranges: list[tuple[int, int]] | None, quick: bool,
          seed: int, runs: int) -> list[dict[str, Any]]:  # fmt: skip
    """The cases of one update: {id, cuts, cycles, phase, outcomes, min_cycles}."""
    if update.cuts in ("every", "after-transfer"):
        start = m.transfer_end() + 1 if update.cuts == "after-transfer" else 1
        ops = quick_ops(update, m) if quick else range(start, m.total + 1)
        return [_case(update, f"op{i}", [i], m.phase(i)) for i in ops if in_ranges(i, ranges)]
    out = []
    runs = min(runs, len(CYCLES)) if update.cuts == "cycles" else runs
    for k in range(1 if quick else runs):
        rng = random.Random(f"{seed}:{update.name}:{k}")
        if update.cuts == "random":
            n, cuts = rng.randint(2, 4), [rng.randint(1, m.total)]
            while len(cuts) < n:
                cuts.append(cuts[-1] + rng.randint(1, max(1, m.total // 3)))
            phase = " / ".join(m.phase(c) for c in cuts)
            out.append(_case(update, f"seed{seed}.{k}", cuts, phase))
        else:  # power cycles at hub events: the announce, the first block served
            cycles = CYCLES[k % len(CYCLES)]
            out.append(_case(update, f"cycle{k}", [], "at " + " / ".join(cycles), cycles))
    return out


def _case(update: Update, tag: str, cuts: list[int], phase: str,
          cycles: list[str] | None = None) -> dict[str, Any]:  # fmt: skip
    outcomes = ["refused"] if not update.trusted else [o for o in CLEAN if o != "refused"]
    return {"id": f"{update.name}/{tag}", "update": update.name, "cuts": cuts,
            "cycles": cycles or [], "phase": phase, "outcomes": outcomes,
            "min_cycles": len(cycles or [])}  # fmt: skip
