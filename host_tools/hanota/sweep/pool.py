"""Run cases on a few sim boards at once: worker processes (spawned: the runner and the
hub use threads), each doing one `cutrun.run_case` at a time."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from . import cutrun


def run_all(cases: list[dict[str, Any]], jobs: int,
            on_done: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """Results in the order of `cases`; on_done(result) as each one finishes."""
    results: dict[str, dict[str, Any]] = {}
    for res in _each(cases, jobs):
        results[res["id"]] = res
        if on_done is not None:
            on_done(res)
    return [results[c["id"]] for c in cases]


def _each(cases: list[dict[str, Any]], jobs: int) -> Iterator[dict[str, Any]]:
    if jobs <= 1 or len(cases) <= 1:
        for c in cases:
            yield cutrun.run_case(c)
        return
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, max_tasks_per_child=25) as ex:
        todo = list(cases)
        running: dict[Future, dict[str, Any]] = {}
        try:
            while todo or running:
                while todo and len(running) < jobs:  # submit lazily: progress stays ordered
                    c = todo.pop(0)
                    running[ex.submit(cutrun.run_case, c)] = c
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in done:
                    case = running.pop(fut)
                    yield _result(fut, case)
        except BaseException:
            for fut in running:
                fut.cancel()
            raise


def _result(fut: Future, case: dict[str, Any]) -> dict[str, Any]:
    try:
        return fut.result()
    except Exception as exc:  # noqa: BLE001 (a worker died: that case did not survive)
        return {"id": case["id"], "update": case["update"], "cuts": case["cuts"],
                "cycles": case.get("cycles") or [], "phase": case.get("phase"),
                "outcome": "broken", "survived": False,
                "failed": {"worker": f"{type(exc).__name__}: {exc}"}, "facts": {},
                "marks": [], "workdir": case["workdir"]}  # fmt: skip
