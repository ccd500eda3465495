"""Function parameters given short shared names in the device build (hanota.argnames)."""

from __future__ import annotations

from pathlib import Path

from hanota import argnames, mpycross
from mpy import check_mpy

SRC = b'''"""doc: fetch_key, max_len"""


def scale(fetch_key, max_len, *rest):
    """docstring naming fetch_key keeps no name alive"""
    total = fetch_key * max_len  # a local: no qstr, left as it is
    return [total + v for v in rest], {"max_len": 1}.get("x", max_len)


def called_by_keyword(wait_tick=5):
    return wait_tick


def closure(window):
    def inner():
        return window

    return inner


def keyed(setting):
    return setting


class Box:
    def __init__(self, grow_hint):
        self.grow_hint = grow_hint  # the attribute keeps its name

    def grow(self, extra, flag):
        global STATE
        STATE = flag  # a global assigned: the module's name, not the parameter's
        return self.grow_hint + extra


KEYS = {"setting": 1}
STATE = 0
'''


def _renamed(src: bytes, unsafe: set[str] | None = None) -> str:
    return argnames.rename({"m.py": src}, unsafe or set())["m.py"].decode()


def test_parameters_take_short_names_and_lines_hold():
    out = _renamed(SRC)
    assert out.count("\n") == SRC.decode().count("\n")  # tracebacks keep their lines
    assert "def scale(a, b, *c):" in out
    assert "total = a * b" in out and "for v in c" in out and '.get("x", b)' in out
    assert "self.grow_hint = a" in out and "def __init__(self, a):" in out
    assert '"""docstring naming fetch_key keeps no name alive"""' in out  # prose stays
    compile(out, "m.py", "exec")


def test_unsafe_parameters_stay():
    out = _renamed(SRC, {"wait_tick", "setting"})
    assert "def called_by_keyword(wait_tick=5):" in out  # passed by keyword somewhere
    assert "def keyed(setting):" in out  # a string names it: ** could pass it
    assert "def closure(window):" in out and "return window" in out  # a nested scope uses it


def test_unsafe_names_come_from_keywords_scripts_and_identifier_strings(tmp_path: Path):
    double = tmp_path / "tests" / "double.py"
    double.parent.mkdir()
    double.write_text("import m\nm.scale(fetch_key=1, max_len=2)\n")
    host = tmp_path / "host.py"
    host.write_text('SCRIPT = "import m\\nm.called_by_keyword(wait_tick=3)\\ny = 1"\nf(window=2)\n')
    unsafe = argnames.unsafe_names({"m.py": SRC}, [double], [double, host])
    assert {"fetch_key", "max_len"} <= unsafe  # a double MicroPython imports: its calls count
    assert "wait_tick" in unsafe  # a keyword call inside a script held in a string
    assert "y" not in unsafe  # an assignment in a script is no keyword
    assert "window" not in unsafe  # a host file's own calls run under CPython, on the source
    assert "setting" in unsafe and "max_len" in unsafe  # strings of the firmware that are names
    # the same double, not one MicroPython imports: only scripts in its strings count
    assert "fetch_key" not in argnames.unsafe_names({"m.py": SRC}, [], [double])


def test_renamed_module_runs_under_micropython(tmp_path: Path):
    script = (
        "import sys\nsys.path.insert(0, '')\nimport m\n"
        "print(m.scale(2, 3, 1, 2)[0], m.called_by_keyword(wait_tick=7), m.closure(4)())\n"
        "b = m.Box(5)\nprint(b.grow(1, 9), m.STATE, b.grow_hint)\n"
    )
    host = tmp_path / "t.py"
    host.write_text(f"SCRIPT = {script!r}\n")
    out = _renamed(SRC, argnames.unsafe_names({"m.py": SRC}, [], [host]))
    assert "def called_by_keyword(wait_tick=5):" in out
    assert "def scale(a, max_len, *b):" in out  # a string of the module is "max_len"
    (tmp_path / "m.py").write_text(out)
    got = check_mpy(script, cwd=str(tmp_path))
    assert got.split() == ["[7,", "8]", "7", "4", "6", "9", "5"]


def test_the_firmware_build_renames_parameters():
    tree = mpycross.firmware_tree()
    fw = mpycross._firmware_sources()
    unsafe = mpycross._unsafe_params(fw)
    out = argnames.rename({"otaclient/image.py": fw["otaclient/image.py"]}, unsafe)
    assert b"def __init__(self, lookup_key" in fw["otaclient/image.py"]
    assert b"def __init__(self, a, " in out["otaclient/image.py"]
    assert (tree / "otaclient" / "image.mpy").is_file()
