"""`hanota rig update --lg-coordinator HOST:PORT --lg-place NAME...`: acquire the places,
bring each board up through its drivers (flash, provision: lgboard.LabgridBoard), update
them at once through one in-process hub over their exported HAN links, release the
places. One place: the usual summary with "place"; more: {"ok", "boards": [...]}.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..output import CommandError, log
from . import lgboard
from .update import UpdateOptions, run_updates


def run_places(opts: UpdateOptions, coordinator: str, patterns: list[str],
               view: Any = None) -> dict[str, Any]:  # fmt: skip
    names = lgboard.places(coordinator, patterns)
    work = Path(opts.workdir or tempfile.mkdtemp(prefix="hanota-rig-"))
    record = _real_record(opts, names)
    with lgboard.acquired(coordinator, names):
        log(f"rig: acquired {' '.join(names)} on {coordinator}")
        env = lgboard.environment(coordinator, names, work)
        app = _factory(opts) if record is None else b""
        made = [lgboard.LabgridBoard(env.get_target(n), opts.board) for n in names]

        def up(i: int) -> lgboard.LabgridBoard:
            if record is not None:
                made[i].adopt(record)
                return made[i]
            return lgboard.brought_up(
                made[i], trust=opts.trust,
                suppliers=opts.suppliers, seed=f"{opts.seed}:{names[i]}:{work}",
                short_addr=i + 1, app=app, heap_report=opts.heap_report,
            )  # fmt: skip

        try:
            with ThreadPoolExecutor(max_workers=len(names)) as pool:
                boards = list(pool.map(up, range(len(names))))
            summaries = asyncio.run(run_updates(opts, boards, view, work))
        finally:  # also when a bring-up failed: every place is left off, as a lab expects
            for b in made:
                try:
                    b.power(False)
                except Exception as exc:  # noqa: BLE001 - a host gone: its place is off anyway
                    log(f"rig: {b.name}: power off failed: {exc}")
            lgboard.close_session()
    if len(summaries) == 1:
        return summaries[0]
    return {"ok": all(s["ok"] for s in summaries), "boards": summaries}


def _real_record(opts: UpdateOptions, names: list[str]) -> dict[str, Any] | None:
    """A real board's place: its record (--record), the board flashed and provisioned
    beforehand; None for sim places, which the rig flashes and provisions itself."""
    from hanota.board import defs

    if defs.load(opts.board)["kind"] == "sim":
        return None
    if opts.record is None or len(names) != 1:
        raise CommandError(
            f"{opts.board} is a real board: the rig does not flash it through a place. Flash "
            "and provision it first ('hanota board flash --port rfc2217://HOST:PORT ...'), "
            "then give one --lg-place and its --record", 2)  # fmt: skip
    return json.loads(opts.record.read_text())


def _factory(opts: UpdateOptions) -> bytes:
    """The factory app: --factory-app's bytes, else this checkout's at --factory-version."""
    from hanota.board import defs
    from hanota.sim import create

    from .update import factory_app

    return factory_app(opts) or create.factory_app(
        defs.load(opts.board), opts.factory_version, None
    )
