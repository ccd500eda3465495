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
