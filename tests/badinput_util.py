"""Helpers shared by the bad-input tests (tests/test_bad_input_catalogue.py and the tests
it cites): the `hanota image` command, signed files to mutate, the fake board against
the CH double, and the ast reader of `@pytest.mark.bad_input` marks."""

from __future__ import annotations

import ast
import os
import struct
import subprocess
import sys
from pathlib import Path

import agent_util as U
import harness as H
from cryptography.hazmat.primitives.asymmetric import ec
from fakes import fake_app
from hanota.image import build, keys
from otaclient import image, zcl

# --- `hanota image`, the installed command --------------------------------------------

HANOTA = str(Path(sys.executable).parent / "hanota")


def hanota(*args, ok=True):
    res = subprocess.run([HANOTA, "image", *map(str, args)], capture_output=True, text=True)
    if ok:
        assert res.returncode == 0, res.stderr + res.stdout
    assert "Traceback" not in res.stderr, res.stderr
    return res


# --- a small signed file and its edits (the verifier's key and target) ----------------

KEY = ec.generate_private_key(ec.SECP256R1())
TARGET = build.Target(0x1234, 0x0084, 0x01020304, 0x0100, 0x01FF, 7)
SIG = slice(image.SIGNED_END, image.SIGNED_END + 64)  # the manufacturer signature


def make(payload, key=KEY, **kw):
    return build.build(payload, TARGET, key, **kw)


SMALL = os.urandom(9000)
SMALL_FILE = make(SMALL)[0][1]


def patch(data, off, fmt, value):
    b = bytearray(data)
    struct.pack_into(fmt, b, off, value)
    return bytes(b)


def resign(data, key=KEY):
    """Re-sign a (modified) single file's head so only the intended defect remains."""
    head = data[: image.SIGNED_END]
    return head + keys.sign_raw(key, head) + data[SIG.stop :]


def manifest_edit(data, off, fmt, value):
    return resign(patch(data, 60 + off, fmt, value))


# --- the agent on the fake board against the CH double (CPython) ----------------------

V2 = 0x01000100  # the fake board runs U.V1


def board(tmp_path, files, store=None):
    return H.make(str(tmp_path), files, store or U.store())


def ends(dbl):
    return [e[1] for e in dbl.events if e[0] == "end"]


def refused_cleanly(port, dbl, status=zcl.INVALID_IMAGE):
    """Run until the device ended the file; assert status and an untouched device."""
    snapshot = (port.store.get("progress.json"), port.store.get("agent.json"))
    a = H.run(port, lambda a: ends(dbl) and a.client.st == 0)
    assert ends(dbl) == [status]
    writes = [op for op in port.oplog if op[0] == "write" or op[0] == "put"]
    assert writes == [], writes
    assert (port.store.get("progress.json"), port.store.get("agent.json")) == snapshot
    assert port.running_version() == U.V1 and not port.pending
    return a


def one(payload_size=20_000, **kw):
    return U.images(fake_app(kw.pop("version", V2), payload_size), kw.pop("v", V2), **kw)


# --- `@pytest.mark.bad_input(...)` marks, read from the source (nothing imported) -----


def _is_bad_input(node) -> bool:
    """`pytest.mark.bad_input` or `mark.bad_input`."""
    return isinstance(node, ast.Attribute) and node.attr == "bad_input"


def _items(call: ast.Call, where: str) -> list[str]:
    args = [a.value for a in call.args if isinstance(a, ast.Constant)]
    assert args and len(args) == len(call.args) and not call.keywords, where
    assert all(isinstance(a, str) for a in args), where
    return args


def _case_id(param: ast.Call, where: str) -> str:
    """A pytest.param's id: its `id=`, else pytest's own for str/int values (joined by -)."""
    for kw in param.keywords:
        if kw.arg == "id":
            assert isinstance(kw.value, ast.Constant), where
            return kw.value.value
    vals = [a.value for a in param.args if isinstance(a, ast.Constant)]
    assert len(vals) == len(param.args), f"{where}: give the marked pytest.param an id="
    return "-".join(str(v) for v in vals)


def _param_marks(dec: ast.Call, where: str):
    """(case id, items) for each pytest.param of a parametrize that carries bad_input."""
    for arg in [*dec.args, *(k.value for k in dec.keywords)]:
        if not isinstance(arg, ast.List | ast.Tuple):
            continue
        for p in arg.elts:
            if not (isinstance(p, ast.Call) and getattr(p.func, "attr", "") == "param"):
                continue
            for kw in p.keywords:
                if kw.arg != "marks":
                    continue
                marks = kw.value.elts if isinstance(kw.value, ast.List | ast.Tuple) else [kw.value]
                for m in marks:
                    if isinstance(m, ast.Call) and _is_bad_input(m.func):
                        yield m, _case_id(p, where), _items(m, where)


def _test_functions(tree: ast.Module):
    """(node id suffix, function) of the module's functions and its classes' methods."""
    for n in tree.body:
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef):
            yield n.name, n
        elif isinstance(n, ast.ClassDef):
            for m in n.body:
                if isinstance(m, ast.FunctionDef | ast.AsyncFunctionDef):
                    yield f"{n.name}::{m.name}", m


def bad_input_marks(tests_dir: Path) -> dict[str, set[str]]:
    """Item id -> the tests marked with it, as `tests/FILE::TEST` or `tests/FILE::TEST[case]`
    (case: the marked pytest.param's id). Every `bad_input` mark in a test file must be a
    test function's decorator or a marked pytest.param of one; any other use fails here."""
    found: dict[str, set[str]] = {}
    for path in sorted(tests_dir.glob("test_*.py")):
        tree = ast.parse(path.read_text(), str(path))
        uses = [n for n in ast.walk(tree) if _is_bad_input(n)]
        read = []
        for name, fn in _test_functions(tree):
            node = f"tests/{path.name}::{name}"
            for dec in fn.decorator_list:
                if not isinstance(dec, ast.Call):
                    continue
                if _is_bad_input(dec.func):
                    read.append(dec.func)
                    for item in _items(dec, node):
                        found.setdefault(item, set()).add(node)
                elif getattr(dec.func, "attr", "") == "parametrize":
                    for m, case, items in _param_marks(dec, node):
                        read.append(m.func)
                        for item in items:
                            found.setdefault(item, set()).add(f"{node}[{case}]")
        stray = [f"{path.name}:{n.lineno}" for n in uses if n not in read]
        assert not stray, f"bad_input marks on no test function: {stray}"
    return found
