import sys
from pathlib import Path

import pytest

# tests import helpers such as tests/mpy.py by module name
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="module")
def imgs(tmp_path_factory):
    """A manufacturer key and images signed with it, one per test module."""
    from hanota.rig import factory

    return factory.Images(tmp_path_factory.mktemp("images"))


@pytest.fixture(scope="module")
def frag2(imgs):
    """A 2-fragment image of version 0x02000000 for sim-ppmid (20 kB firmware, files
    under 12 kB): the hub tests' staple."""
    return imgs.build(0x02000000, board="sim-ppmid", size=8192 + 4000, max_size=8500)


def pytest_addoption(parser):
    group = parser.getgroup("hanota-conformance", "port conformance on a real board")
    group.addoption("--board-app", default=None,
                    help="a known-good app image (.bin, app only) for the real board: the "
                    "conformance suite stages, arms, boots and rolls it back")  # fmt: skip
    group.addoption(
        "--board-app-version",
        default=None,
        help="the u32 version to activate --board-app as (e.g. 0x01020304)",
    )
    group.addoption(
        "--board-prev-version",
        default=None,
        help="the u32 version of the app the board runs before the suite",
    )
