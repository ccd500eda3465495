"""Fallback engine when atheris is not importable: hypothesis-driven random inputs.

Not coverage-guided: raw binaries plus seed files with random flips, inserts, deletes
and truncations, in batches until the time is up. Results are labelled "hypothesis".
"""

from __future__ import annotations

import hashlib
import time

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from hanota.fuzz.runner import CORPUS, CRASHES, ROOT, Result
from hanota.fuzz.targets import TARGETS


def mutate(seed: bytes, edits: list[tuple[int, int, int]]) -> bytes:
    """Apply (position, value, kind) edits: 0 xor, 1 insert, 2 delete, 3 truncate."""
    out = bytearray(seed)
    for pos, val, kind in edits:
        i = pos % (len(out) + 1)
        if kind == 0 and i < len(out):
            out[i] ^= val or 1
        elif kind == 1:
            out[i:i] = bytes([val])
        elif kind == 2:
            del out[i : i + 1 + val % 8]
        elif kind == 3:
            del out[i:]
    return bytes(out)


def inputs(seeds: list[bytes], max_raw: int = 1024) -> st.SearchStrategy[bytes]:
    """Raw binaries, and seeds with a few random edits (most inputs)."""
    edit = st.tuples(st.integers(0, 1 << 20), st.integers(0, 255), st.integers(0, 3))
    mutated = st.builds(mutate, st.sampled_from(seeds), st.lists(edit, max_size=6))
    return st.one_of(st.binary(max_size=max_raw), mutated, mutated)


def seeds_of(target: str) -> list[bytes]:
    return [p.read_bytes() for p in sorted((CORPUS / target).iterdir())]


def run_hypothesis(target: str, seconds: int) -> Result:
    """Batches of 200 examples until `seconds` are spent or an input fails."""
    fn = TARGETS[target]
    res = Result(target, "hypothesis", 0.0)
    failing: list[bytes] = []

    @settings(
        max_examples=200, deadline=None, database=None,
        phases=[Phase.generate, Phase.shrink], suppress_health_check=list(HealthCheck),
    )  # fmt: skip
    @given(inputs(seeds_of(target)))
    def one(data: bytes) -> None:
        res.executions += 1
        try:
            fn(data)
        except BaseException:
            failing.append(data)
            raise

    start = time.time()
    while time.time() - start < seconds:
        try:
            one()
        except Exception as e:  # the last failing input is hypothesis' shrunk one
            data = failing[-1]
            CRASHES.mkdir(parents=True, exist_ok=True)
            path = CRASHES / f"{target}-crash-hyp-{hashlib.sha1(data).hexdigest()}"
            path.write_bytes(data)
            res.findings.append(str(path.relative_to(ROOT)))
            res.detail = f"{type(e).__name__}: {e}"[:300]
            break
    res.seconds = time.time() - start
    res.exec_per_s = int(res.executions / max(res.seconds, 1e-9))
    return res
