"""Other modules' integer constants folded into the device build (hanota.constfold)."""

from __future__ import annotations

import pytest
from hanota import constfold, mpycross
from mpy import check_mpy

A = b'''"""Defines."""
from micropython import const

CF_BASE = const(0x40)
CF_NEXT = const(CF_BASE + 2)  # from an earlier constant
CF_NEG = const(-3)
CF_KEPT = const(7)  # named by a module outside the build
CF_QUOTED = const(9)  # named in a string
NOT_CONST = 5


def cf_local():
    return CF_BASE + CF_KEPT
'''
B = b'''"""Uses."""
from pk import cfa as a
from pk.cfa import (
    CF_NEG,
    NOT_CONST,
)
from pk.cfa import CF_NEXT as NEXT


def uses():
    return a.CF_BASE, NEXT, CF_NEG, NOT_CONST, a.CF_QUOTED, "CF_QUOTED"
'''
C = b"""from pk.cfa import *  # noqa: F403
"""
D = b"""from pk.cfa import CF_NEG


def rebinds(CF_NEG=1):
    return CF_NEG


def reads():
    return CF_NEG
"""
OUTSIDE = b"from pk import cfa\nprint(cfa.CF_KEPT)\n"


def _fold():
    files = {"pk/cfa.py": A, "pk/cfb.py": B, "pk/cfc.py": C, "pk/cfd.py": D, "pk/__init__.py": b""}
    return constfold.fold(files, {"main.py": OUTSIDE})


def test_uses_become_values_imports_shrink_and_unused_definitions_go_private():
    out = _fold()
    a, b, c = (out[f"pk/{m}.py"].decode() for m in ("cfa", "cfb", "cfc"))
    for src, orig in ((a, A), (b, B), (c, C)):
        assert src.count("\n") == orig.decode().count("\n")  # line numbers hold
        compile(src, "m.py", "exec")
    assert 'return 64, 66, (-3), NOT_CONST, 9, "CF_QUOTED"' in b
    assert "from pk.cfa import NOT_CONST\n\n\n\n" in b  # folded names leave, lines stay
    assert "CF_NEXT" not in b and "\npass\n" in b  # a wholly folded import
    # a module that rebinds a name anywhere keeps it as it is
    assert out["pk/cfd.py"] == D
    # no module of the build names them any more: private (not stored) in the definer
    assert "_CF_BASE = const(0x40)" in a and "_CF_NEXT = const(_CF_BASE + 2)" in a
    assert "return _CF_BASE + CF_KEPT" in a
    # kept public: still imported (cfd), named outside the build, named in a string
    assert "\nCF_NEG = const(-3)" in a and "\nCF_KEPT = const(7)" in a
    assert "\nCF_QUOTED = const(9)" in a and "\nNOT_CONST = 5" in a
    # the star import still gets every public name
    assert c.startswith("from pk.cfa import *; CF_BASE = 64; CF_NEXT = 66\n")
    # every const() is folded by mpy-cross: the import (a global) goes, its line stays
    assert a.startswith('"""Defines."""\npass\n')


def test_const_import_stays_where_const_is_used_another_way():
    keep = b"from micropython import const, opt_level\n\nX = const(1)\nf = const\n"
    mixed = b"from micropython import (\n    const,\n    opt_level,\n)\n\nX = const(1)\n"
    out = constfold.fold({"k.py": keep, "m.py": mixed})
    assert out["k.py"] == keep
    assert out["m.py"] == b"from micropython import opt_level\n\n\n\n\nX = const(1)\n"


def test_broken_sources_pass_through():
    broken = b"def f(:\n    pass\n"
    assert constfold.fold({"x.py": broken, "pk/cfa.py": A})["x.py"] == broken


@pytest.mark.micropython
def test_folded_build_runs_and_drops_the_globals(tmp_path):
    files = [("pk/__init__.py", b""), ("pk/cfa.py", A), ("pk/cfb.py", B), ("pk/cfc.py", C),
             ("pk/cfd.py", D), ("main.py", OUTSIDE)]  # fmt: skip
    for rel, data in mpycross.compile_tree(files):
        dst = tmp_path / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(data)
    out = check_mpy(
        f"import sys\nsys.path.insert(0, {str(tmp_path)!r})\n"
        "from pk import cfa, cfb, cfc, cfd\n"
        "print(cfb.uses(), cfd.rebinds(), cfd.reads(), cfa.cf_local())\n"
        "print(sorted(k for k in dir(cfa) if k.startswith('CF')), cfc.CF_NEXT, cfc.CF_KEPT)\n"
    )
    assert "(64, 66, -3, 5, 9, 'CF_QUOTED') 1 -3 71" in out
    assert "['CF_KEPT', 'CF_NEG', 'CF_QUOTED'] 66 7" in out
    assert "const" not in check_mpy(
        f"import sys\nsys.path.insert(0, {str(tmp_path)!r})\nfrom pk import cfa\nprint(dir(cfa))\n"
    )
