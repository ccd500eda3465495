"""One measured OTA transfer to a fresh sim board: the hub in process (RigHub), the board's
HAN pty through the link emulator with a given profile, the real agent on MicroPython.

Measures from the first block request the hub served to the device's Upgrade End Request
for the last fragment (so every byte was delivered and verified), and from submission.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from hanota import paths
from hanota.hub import HubConfig
from hanota.link.profiles import LinkProfile
from hanota.rig import simboards
from hanota.rig.factory import Images
from hanota.rig.session import RigHub
from hanota.sim import appimage
from hanota.sim.runner import SimBoard

BOARD = "sim-ppmid"
V1, V2 = 0x01000000, 0x01000001
_STAND_IN = """# bench stand-in: firmware/main.py is not in this checkout yet
from ports import make_port
from otaclient import image
port = make_port()
image.prepare()
from otaclient.agent import main
main(port)
"""


def app_source(work: Path) -> tuple[Path, str]:
    """The app tree the boards run: firmware/, or a stand-in main.py over it (noted)."""
    if (paths.FIRMWARE / "main.py").is_file():
        return paths.FIRMWARE, ""
    tree = work / "app-src"
    if not tree.exists():
        shutil.copytree(paths.FIRMWARE, tree, ignore=shutil.ignore_patterns("__pycache__"))
        (tree / "main.py").write_text(_STAND_IN)
    return tree, ("firmware/main.py was not in the checkout at run time: the boards ran a "
                  "stand-in main.py (port, image.prepare(), otaclient.agent.main)")  # fmt: skip


def app(work: Path, version: int, pad_to: int | None = None) -> bytes:
    from hanota.board import defs

    src, _note = app_source(work)
    return appimage.build(appimage.collect(src), version, defs.load(BOARD), pad_to=pad_to)


def small_app(version: int, size: int) -> bytes:
    """A valid sim app of exactly `size` bytes (a one-line main.py plus the pad asset):
    short measured transfers that still pass the board's check_app."""
    from hanota.board import defs

    return appimage.build([("main.py", b"pass\n")], version, defs.load(BOARD), pad_to=size)


class Bench:
    """Shared inputs for sim transfers: a manufacturer key and the factory app."""

    def __init__(self, work: Path):
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        self.images = Images(work / "keys")
        self.factory = app(work, V1)
        self.note = app_source(work)[1]
        self.count = 0

    def files(self, payload: bytes, *, compress: bool, name: str) -> list[Path]:
        return self.images.build(V2, board=BOARD, payload=payload, compress=compress, name=name)

    def board(
        self, heap: str | None = None, short_addr: int = 1
    ) -> tuple[SimBoard, dict[str, Any]]:
        """A fresh provisioned sim board (not started) and its record."""
        self.count += 1
        d = self.work / f"board{self.count}"
        shutil.rmtree(d, ignore_errors=True)
        _ident, record = simboards.fresh(d, BOARD, factory_version=V1, trust=[self.images.pub_path],
                                         suppliers=["supplier-a"], seed=f"bench:{d}",
                                         short_addr=short_addr, app=self.factory)  # fmt: skip
        return SimBoard(d, heap=heap), record


def rig_for(work: Path, profile: LinkProfile) -> RigHub:
    rig = RigHub(work, HubConfig(confirm_delay_s=1.0, block_size=profile.max_block), "direct")
    rig.profile = profile
    return rig


async def transfer(bench: Bench, profile: LinkProfile, files: list[Path], *,
                   heap: str | None = None, timeout: float = 600) -> dict[str, Any]:  # fmt: skip
    """Submit `files` to a fresh board over `profile`; figures once the device has
    verified the last fragment (Upgrade End Request SUCCESS) or the transfer ended."""
    sim, record = bench.board(heap)
    eui = record["eui64"]
    hub_dir = bench.work / f"hub{bench.count}"
    shutil.rmtree(hub_dir, ignore_errors=True)
    async with rig_for(hub_dir, profile) as rig:
        t0 = time.monotonic()
        sim.start()
        b = await rig.add_sim(sim, record)
        await rig.wait(lambda: rig.reported(eui), 60, "the board's DEVICE_ANNOUNCE")
        cold = time.monotonic() - t0
        sub = rig.hub.submit("supplier-a", [eui], files)
        t_sub = time.monotonic()
        key = (sub["id"], eui)
        done = lambda: _done(rig, key, len(files))  # noqa: E731
        await rig.wait(done, timeout, "the transfer", poll=0.01)
        t_end, wall_end = time.monotonic(), time.time()
        t = rig.hub.state.transfers[key]
        stats = b.emulator.stats() if b.emulator else {}
        return {
            "state": t.state,
            "ok": t.state not in ("failed", "discarded"),
            "file_bytes": sum(f.stat().st_size for f in files),
            "fragments": len(files),
            "sent": t.sent,
            # first block request served .. the device's Upgrade End Request seen
            "seconds": (t.ended or wall_end) - (t.first_block or wall_end),
            "hub_send_seconds": (t.last_block or 0) - (t.first_block or 0),
            "end_to_end_seconds": t_end - t_sub,
            "cold_start_seconds": cold,
            "link": stats,
            "profile": profile.name,
            "heap": heap,
        }


def _done(rig: RigHub, key: tuple[str, str], n: int) -> bool:
    t = rig.hub.state.transfers.get(key)
    return t is not None and (len(t.held) >= n or t.state not in ("pending", "transferring"))


def custom(
    base: LinkProfile, *, block: int | None = None, latency_s: float | None = None
) -> LinkProfile:
    name = f"{base.name}-b{block or base.max_block}-l{int(1000 * (latency_s if latency_s is not None else base.latency_s))}"
    return replace(base, name=name, max_block=block or base.max_block,
                   latency_s=base.latency_s if latency_s is None else latency_s)  # fmt: skip


def run(coro: Any) -> Any:
    return asyncio.run(coro)
