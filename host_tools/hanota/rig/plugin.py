"""pytest plugin registered by the hanota package (entry point `pytest11`).

Options: `--board-port` (a real board's console), `--hub-port` (its HAN UART),
`--board-name`, `--board-record`. Tests marked `hardware` are skipped without a board.
Fixtures: `images` (manufacturer key + signed images built on the fly), `hub` (a hub
served on a background loop), `board` (a fresh provisioned sim board, the real one, or
under labgrid's own `--lg-env` the board of its `main` target: a `RemotePlace` this user
has acquired, flashed and provisioned through its drivers and powered off after),
`make_board` (several boards), `link_faults` (emulator faults for `hub.attach`).
Works under pytest-xdist: every worker has its own temporary dirs, ptys and hub.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hanota", "hanota rig")
    group.addoption("--board-port", default=None, help="serial port of a real board's console")
    group.addoption("--hub-port", default=None, help="serial port of a real board's HAN UART")
    group.addoption("--board-name", default=None, help="board definition of the real board")
    group.addoption("--board-record", default=None, help="the real board's provisioning record")
    group.addoption("--link-profile", default="direct", help="link profile for the hub fixture")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "hardware: needs a real board (--board-port)")
    config.addinivalue_line("markers", "sim: runs simulated boards (MicroPython + agent)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--board-port"):
        return
    skip = pytest.mark.skip(reason="needs a real board: pass --board-port PORT")
    for item in items:
        if "hardware" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """`images.build(version, board=..., size=..., max_size=...)` -> signed OTA files;
    `images.pub_path` is the manufacturer public key boards trust."""
    from hanota.rig.factory import Images

    return Images(tmp_path_factory.mktemp("images"))


@pytest.fixture()
def hub(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A hub on a background event loop: `hub.hub` (the Hub API), `hub.attach(board)`."""
    from hanota.rig.fixtures import HubThread

    h = HubThread(tmp_path / "hub", request.config.getoption("--link-profile"))
    yield h
    h.close()


@pytest.fixture()
def make_board(request: pytest.FixtureRequest, tmp_path: Path, images: Any) -> Iterator[Any]:
    """make_board(board="sim-ppmid", suppliers=[...], factory_version=V) -> a started board."""
    from hanota.rig.fixtures import SimRigBoard

    made: list[Any] = []

    def make(board: str = "sim-ppmid", suppliers: list[str] | None = None,
             factory_version: int = 0x01000000, heap: str | None = None,
             agent_config: dict[str, Any] | None = None) -> Any:  # fmt: skip
        n = len(made) + 1
        b = SimRigBoard(tmp_path / f"board{n}", board, [images.pub_path],
                        suppliers or ["supplier-a"], n, factory_version, heap,
                        agent_config)  # fmt: skip
        made.append(b)
        return b.start()

    yield make
    for b in made:
        b.stop()


@pytest.fixture()
def board(request: pytest.FixtureRequest, make_board: Any, images: Any) -> Iterator[Any]:
    """The board under test: a fresh sim-ppmid, the real one given by --board-port, or
    the labgrid target of --lg-env (labgrid's pytest plugin)."""
    port = request.config.getoption("--board-port")
    if _lg_env(request.config):
        from hanota.rig.lgboard import LabgridBoard, brought_up

        target = request.getfixturevalue("target")  # labgrid's fixture: the env's main target
        name = request.config.getoption("--board-name") or "sim-ppmid"
        b = brought_up(LabgridBoard(target, name), trust=[images.pub_path],
                       suppliers=["supplier-a"], seed=f"fixture:{request.node.nodeid}")  # fmt: skip
        yield b
        b.stop()
        b.power(False)
        return
    if not port:
        yield make_board()
        return
    from hanota.rig.fixtures import RealBoard

    rec = request.config.getoption("--board-record")
    record = json.loads(Path(rec).read_text()) if rec else None
    yield RealBoard(port, request.config.getoption("--hub-port"), record)


def _lg_env(config: pytest.Config) -> str | None:
    """labgrid's --lg-env (or $LG_ENV) when its pytest plugin is loaded."""
    import os

    if not hasattr(config.option, "lg_env"):
        return None
    return config.option.lg_env or os.environ.get("LG_ENV")


@pytest.fixture()
def link_faults() -> Any:
    """The Faults class: hub.attach(board, link_faults(seed=1, drop=0.02))."""
    from hanota.link.faults import Faults

    return Faults
