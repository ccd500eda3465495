"""Running a hub as a service: state lock, links, alert loop, control socket, view.

`hanota hub serve` and the demo call `serve()`; tests and the rig may drive the pieces
(server.LinkSession, Hub.alert_loop) themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import control
from .core import Hub, HubConfig, HubError
from .server import parse_link, serve_path
from .view import make_view


@contextlib.contextmanager
def locked(state_dir: Path) -> Iterator[None]:
    """Hold STATE/hub.lock: one process owns a state directory at a time."""
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(state_dir / "hub.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise HubError(
                f"{state_dir} is in use by another hub process (and its control socket "
                "does not answer)"
            ) from None
        yield
    finally:
        os.close(fd)


async def serve(hub: Hub, links: list[tuple[str, str]], *, baud: int = 115200,
                control_dir: Path | None = None, view: Any = None) -> None:  # fmt: skip
    """Serve links (reopened when they go away) until cancelled."""
    hub.started()
    tasks = [asyncio.create_task(hub.alert_loop())]
    tasks += [asyncio.create_task(serve_path(hub, p, e, baud)) for p, e in links]
    ctl = await control.start(hub, control_dir) if control_dir is not None else None
    if view is not None:
        view.start()
    try:
        await asyncio.Event().wait()
    finally:
        if view is not None:
            view.stop()
        if ctl is not None:
            ctl.close()
            with contextlib.suppress(OSError):
                os.unlink(control.address(control_dir))  # type: ignore[arg-type]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def serve_command(args: Any) -> int:
    """`hanota hub serve`: build the config from the options and serve until interrupted."""
    from hanota.link import profiles

    from ..output import CommandError, log

    try:
        prof = profiles.get(args.profile)
        links = [parse_link(spec) for spec in args.link]
        cfg = HubConfig(block_size=args.block_size or prof.max_block,
                        min_block_period_ms=args.min_block_period, meter_wait_s=args.meter_wait,
                        confirm_delay_s=args.confirm_delay, stagger_s=args.stagger,
                        stall_timeout_s=args.stall_timeout, turn_s=args.turn)  # fmt: skip
    except (ValueError, HubError) as exc:
        raise CommandError(str(exc)) from None
    baud = args.baud or (int(prof.baud * 10) if prof.baud else 115200)
    try:
        with locked(args.state):
            hub = Hub(cfg, state_dir=args.state)
            for key in args.trust:
                log(f"hub: trusting manufacturer key {hub.add_anchor(key)['key_id']} ({key})")
            for key in args.authority:
                kid = hub.add_anchor(key, authority=True)["key_id"]
                log(f"hub: trusting rotation-authority key {kid} ({key})")
            log(f"hub: serving {len(links)} link(s), state {args.state}, control "
                f"{control.address(args.state)}")  # fmt: skip
            try:
                asyncio.run(serve(hub, links, baud=baud, control_dir=args.state,
                                  view=make_view(hub, args.quiet)))  # fmt: skip
            finally:
                hub.close()
    except HubError as exc:
        raise CommandError(str(exc)) from None
    return 0
