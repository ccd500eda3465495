"""Long name-like string literals made qstrs in the device build (hanota.internstr)."""

from __future__ import annotations

import pytest
from hanota import internstr, mpycross
from mpy import check_mpy

SRC = b'''"""A module
docstring over
three lines."""

LONG_NAME = "fragment_offset"


def status(ok):
    # the same text twice: one qstr; a message and a keyword stay as they are
    return ("BAD_COMPRESSION" if ok else "BAD_COMPRESSION"), "short piece at %d", "continue"


def fail():
    raise ValueError(b"bytes_are_not_names")
'''


def _n_objects(mpy: bytes) -> int:
    # .mpy v6: 4-byte header, then vuint n_qstr, vuint n_obj (constant objects)
    vals, i = [], 4
    for _ in range(2):
        v = 0
        while True:
            c = mpy[i]
            i += 1
            v = v << 7 | c & 0x7F
            if not c & 0x80:
                break
        vals.append(v)
    return vals[1]


def test_docstring_becomes_a_dead_if_listing_the_names_line_numbers_hold():
    out = internstr.intern_strings(SRC).decode()
    assert out.splitlines()[0] == "if 0: fragment_offset, BAD_COMPRESSION"
    assert out.count("\n") == SRC.decode().count("\n")
    assert out.splitlines()[7] == "def status(ok):"  # same line as in the source
    compile(out, "m.py", "exec")


def test_modules_without_docstring_or_names_are_unchanged():
    plain = b'x = "fragment_offset"\n'
    assert internstr.intern_strings(plain) == plain
    no_long = b'"""doc"""\nx = "short"\ny = "has spaces in it"\n'
    assert internstr.intern_strings(no_long) == no_long
    broken = b'"""doc"""\ndef f(:\n    "fragment_offset"\n'
    assert internstr.intern_strings(broken) == broken


@pytest.mark.micropython
def test_interned_literals_leave_the_constant_table_and_keep_their_values(tmp_path):
    plain = mpycross.compile_source(SRC, "m.py")
    interned = mpycross.compile_source(internstr.intern_strings(SRC), "m.py")
    # fragment_offset and BAD_COMPRESSION no longer objects; the message and bytes stay
    assert _n_objects(interned) == _n_objects(plain) - 2 == 2
    (tmp_path / "m.mpy").write_bytes(interned)
    out = check_mpy(
        f"import sys\nsys.path.insert(0, {str(tmp_path)!r})\nimport m\n"
        "print(m.LONG_NAME, m.status(1), m.status(0)[0] is m.status(1)[0])\n"
        "try:\n    m.fail()\nexcept ValueError as e:\n    import sys; sys.print_exception(e)\n"
    )
    assert "fragment_offset ('BAD_COMPRESSION', 'short piece at %d', 'continue') True" in out
    assert "line 14, in fail" in out  # the traceback still names the source line
