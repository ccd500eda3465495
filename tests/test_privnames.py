"""Module-private names shortened in the device build (hanota.privnames)."""

from __future__ import annotations

import re

import pytest
from hanota import mpycross, privnames
from mpy import check_mpy

A = b'''"""doc"""
_LIMIT = const(7)
PUBLIC = 1


def _helper(x):
    return x + _LIMIT


class Thing:
    def __init__(self):
        self._count = 0  # comment keeps its place
        self._shared = 1
        self.__dunder = 2

    def _bump(self):
        self._count = _helper(self._count)
        return getattr(self, "_quoted", None), f"{self._fmt}"
'''
B = b"""def _other(y):
    return y._shared
"""


def test_private_names_shorten_per_module_and_share_short_names():
    out = privnames.rename({"a.py": A, "b.py": B})
    a, b = out["a.py"].decode(), out["b.py"].decode()
    assert a.count("\n") == A.decode().count("\n")  # line numbers hold (tracebacks)
    for gone in ("_LIMIT", "_helper", "_count", "_bump"):
        assert not re.search(rf"\b{gone}\b", a), gone
    # kept: public, dunder, used by two modules, named in a string
    for kept in ("PUBLIC", "__init__", "__dunder", "_shared", "_quoted", "_fmt", "Thing"):
        assert re.search(rf"\b{kept}\b", a), kept
    # each module numbers its own private names from the same series: shared qstrs
    assert re.search(r"^_a = const\(7\)", a, re.M) and re.search(r"def _a\(y\)", b)
    assert "def _b(x)" in a
    compile(a, "a.py", "exec")


def test_names_used_as_keywords_stay():
    src = b"def f(_kept=1, **kw):\n    return dict(_also=2, x=_kept)\n\n\ndef _gone():\n    return f(_kept=3)\n"
    out = privnames.rename({"k.py": src})["k.py"].decode()
    assert "_kept" in out and "_also" in out and "_gone" not in out
    assert out.count("_kept") == 3


def test_others_and_broken_sources_block_renaming():
    out = privnames.rename({"a.py": A}, others={"main.py": b"import a\na._helper(1)\n"})
    assert b"def _helper(x)" in out["a.py"]
    broken = b"def f(:\n    _x = 1\n"
    assert privnames.rename({"c.py": broken})["c.py"] == broken


@pytest.mark.micropython
def test_device_build_interns_fewer_names(tmp_path):
    # the whole device import set, loaded from the plain and from the renamed build
    srcs = {p: s for p, s in mpycross._firmware_sources().items() if p != "main.py"}
    for tree, built in (("plain", srcs), ("short", privnames.rename(srcs))):
        for rel, src in built.items():
            dst = tmp_path / tree / (rel[:-3] + ".mpy")
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(mpycross.compile_source(src, rel))
    code = (
        "import sys, micropython\nsys.path.insert(0, {!r})\n"
        "import ports.unix\nfrom otaclient import agent, image, p256, reassembly\n"
        "micropython.qstr_info()\n"
    )
    counts = []
    for tree in (tmp_path / "plain", tmp_path / "short"):
        out = check_mpy(code.format(str(tree)), heap="512k")
        counts.append(int(re.search(r"n_qstr=(\d+)", out).group(1)))
    plain, short = counts
    assert short <= plain - 100, counts


def test_module_names_for_tracebacks():
    assert mpycross.module_name("otaclient/client.py") == "otaclient.client"
    assert mpycross.module_name("ports/__init__.py") == "ports"
    assert mpycross.module_name("main.py") == "main"


@pytest.mark.micropython
def test_device_traceback_names_the_module_and_source_line():
    # the device build labels code with the module's name (a qstr it has anyway), not a path
    code = (
        "from otaclient import imagefmt\n"
        "try:\n    imagefmt.parse_header(b'')\n"
        "except Exception as e:\n    import sys\n    sys.print_exception(e)\n"
    )
    out = check_mpy(code, heap="256k")
    line = next(n for n, text in enumerate(
        (mpycross.paths.FIRMWARE / "otaclient/imagefmt.py").read_text().splitlines(), 1)
        if text.startswith("def parse_header"))  # fmt: skip
    m = re.search(r'File "otaclient\.imagefmt", line (\d+)', out)
    assert m, out
    assert line < int(m.group(1)) < line + 40, out
