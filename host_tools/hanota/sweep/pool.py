"""Run cases on a few sim boards at once: worker processes (spawned: the runner and the
hub use threads), each doing one `cutrun.run_case` at a time.

When the sweep stops early (a signal, an error) the workers are told to stop too: SIGTERM
makes a worker's case unwind (its board powered off) and the worker exit, and a worker
still there after STOP_S is killed. A worker whose parent dies by other means gets SIGTERM
from the kernel. Workers ignore SIGINT: a terminal's Ctrl-C reaches the whole process
group, and the parent stops them in order."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from hanota import stopping

from . import cutrun

STOP_S = 10.0  # a stopped worker's case unwinds in well under this


def run_all(cases: list[dict[str, Any]], jobs: int,
            on_done: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """Results in the order of `cases`; on_done(result) as each one finishes."""
    results: dict[str, dict[str, Any]] = {}
    with contextlib.closing(_each(cases, jobs)) as each:
        for res in each:
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
    ex = ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, max_tasks_per_child=25,
                             initializer=_worker_init, initargs=(os.getpid(),))  # fmt: skip
    todo = list(cases)
    running: dict[Future, dict[str, Any]] = {}
    try:
        while todo or running:
            while todo and len(running) < jobs:  # submit lazily: progress stays ordered
                c = todo.pop(0)
                running[ex.submit(_run_case, c)] = c
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                case = running.pop(fut)
                yield _result(fut, case)
    except BaseException:  # a signal, an error, or the consumer closed this generator
        _stop_workers(ex)
        raise
    ex.shutdown(wait=True)


def _stop_workers(ex: ProcessPoolExecutor) -> None:
    """SIGTERM every worker, wait up to STOP_S for them to exit, kill the rest."""
    # the executor's own table of its workers (what Python 3.14's terminate_workers uses)
    procs = list(ex._processes.values())
    ex.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        with contextlib.suppress(OSError, ValueError):
            p.terminate()
    end = time.monotonic() + STOP_S
    for p in procs:
        p.join(max(0.0, end - time.monotonic()))
    for p in procs:
        if p.is_alive():
            p.kill()
            p.join()
    ex.shutdown(wait=True)


def _worker_init(parent: int) -> None:
    stopping.die_with_parent(signal.SIGTERM, parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_case(case: dict[str, Any]) -> dict[str, Any]:
    """In a worker: one case; on SIGTERM its teardown runs, then the worker exits (an idle
    worker just ends: SIGTERM's default)."""
    try:
        with stopping.raising((signal.SIGTERM,)):
            return cutrun.run_case(case)
    except stopping.Stopped as exc:
        os._exit(exc.status)


def _result(fut: Future, case: dict[str, Any]) -> dict[str, Any]:
    try:
        return fut.result()
    except Exception as exc:  # noqa: BLE001 (a worker died: that case did not survive)
        return {"id": case["id"], "update": case["update"], "cuts": case["cuts"],
                "cycles": case.get("cycles") or [], "phase": case.get("phase"),
                "outcome": "broken", "survived": False,
                "failed": {"worker": f"{type(exc).__name__}: {exc}"}, "facts": {},
                "marks": [], "workdir": case["workdir"]}  # fmt: skip
