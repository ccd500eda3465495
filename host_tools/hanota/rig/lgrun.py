"""`hanota rig update --lg-coordinator HOST:PORT --lg-place NAME...`: acquire the places,
bring each board up through its drivers (flash, provision: lgboard.LabgridBoard), update
them at once through one in-process hub over their exported HAN links, release the
places. One place: the usual summary with "place"; more: {"ok", "boards": [...]}.
"""

from __future__ import annotations

import asyncio
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..output import log
from . import heap, lgboard
from .factory import device
from .update import UpdateOptions, run_updates


def run_places(opts: UpdateOptions, coordinator: str, patterns: list[str],
               view: Any = None) -> dict[str, Any]:  # fmt: skip
    names = lgboard.places(coordinator, patterns)
    work = Path(opts.workdir or tempfile.mkdtemp(prefix="hanota-rig-"))
    with lgboard.acquired(coordinator, names):
        log(f"rig: acquired {' '.join(names)} on {coordinator}")
        env = lgboard.environment(coordinator, names, work)
        boards = [lgboard.LabgridBoard(env.get_target(n), opts.board) for n in names]
        app = _factory(opts)
        with ThreadPoolExecutor(max_workers=len(boards)) as pool:
            list(pool.map(lambda ib: _bring_up(ib[1], ib[0], opts, app, work), enumerate(boards)))
        try:
            summaries = asyncio.run(run_updates(opts, boards, view, work))
        finally:
            for b in boards:
                b.power(False)  # a place is left as a lab expects to find it: off
    for b, s in zip(boards, summaries, strict=True):
        s["place"] = b.name
    if len(summaries) == 1:
        return summaries[0]
    return {"ok": all(s["ok"] for s in summaries), "boards": summaries}


def _factory(opts: UpdateOptions) -> bytes:
    from hanota.board import defs
    from hanota.sim import create

    if opts.factory_app is not None:
        from .update import _factory_app

        return _factory_app(opts)
    return create.factory_app(defs.load(opts.board), opts.factory_version, None)


def _bring_up(board: lgboard.LabgridBoard, i: int, opts: UpdateOptions, app: bytes,
              work: Path) -> None:  # fmt: skip
    ident, record = device(opts.board, opts.suppliers, seed=f"{opts.seed}:{board.name}:{work}",
                           short_addr=i + 1, anchors=opts.trust)  # fmt: skip
    ident.agent_config = heap.with_report(None) if opts.heap_report else None
    board.bring_up(app, ident, record)
