"""pytest plugin registered by the hanota package (entry point `pytest11`).

Adds `--board-port` (a real board's serial port) and skips tests marked
`hardware` when none is given. Fixtures for sim boards, the hub and images are
added by the rig modules as they grow.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hanota", "hanota rig")
    group.addoption("--board-port", default=None, help="serial port of a real board's console")
    group.addoption("--hub-port", default=None, help="serial port of a real board's HAN UART")
    group.addoption("--board-name", default=None, help="board definition of the real board")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "hardware: needs a real board (--board-port)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--board-port"):
        return
    skip = pytest.mark.skip(reason="needs a real board: pass --board-port PORT")
    for item in items:
        if "hardware" in item.keywords:
            item.add_marker(skip)
