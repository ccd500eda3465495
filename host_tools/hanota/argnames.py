"""Give device functions' parameters short shared names (the device build only).

Every parameter name of a function a module defines is a qstr, interned when the module
loads (keyword calls need it; a local variable's name is not kept). On the 64-bit unix
port each costs ~11 bytes of the name pool, and the pool grows by doubling: the agent's
names sit just under the 620 that five pools hold, and the sixth pool is 640 entries,
~7.4 KB at once, more than the agent's free heap. Renaming `lookup_key`, `max_size`,
`timeout_ms` ... to a series shared by every function (`a`, `b`, ...) keeps the pool
count down without touching behaviour.

A parameter is renamed only when it is safe to: no call that may run under MicroPython
passes it by keyword (the firmware, the test doubles MicroPython imports, and any
`name=` in a string anywhere in the project: MicroPython scripts live in strings), no
string of the firmware is the name alone (a key `**` could pass), it is not
`self`/`cls`, and the function has no nested function, lambda or class that uses it and
no comprehension that binds it. A new name is one no identifier of the module uses
already. Renaming is position by position from the syntax tree, within lines, so line
numbers (tracebacks) are unchanged. The CPython tests and host tools run the source,
which keeps every name.
"""

from __future__ import annotations

import ast
import re
import string
from itertools import product
from pathlib import Path

_KEEP = {"self", "cls"}
_WORD = re.compile(r"\w+")
_KWARG = re.compile(r"[(,]\s*(\w+)\s*=(?!=)")  # `f(a, name=...)` in a script


def unsafe_names(sources: dict[str, bytes], callers: list[Path], project: list[Path]) -> set[str]:
    """Names no rename may take: those passed by keyword in `sources` or in `callers` (the
    project's other files MicroPython may import: test doubles), any `name=` inside a
    string literal of `project` (a MicroPython script held in a string), and every string
    of `sources` that is one identifier (a dict key that `**` could pass by keyword)."""
    unsafe: set[str] = set()
    for src, calls in [(s, True) for s in sources.values()] + [
        (_read(p), p in callers) for p in sorted(set(callers) | set(project))
    ]:
        try:
            tree = ast.parse(src)
        except (SyntaxError, ValueError):
            unsafe.update(_WORD.findall(src.decode(errors="replace")))  # conservative
            continue
        for node in ast.walk(tree):
            if calls and isinstance(node, ast.keyword) and node.arg:
                unsafe.add(node.arg)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                unsafe.update(_KWARG.findall(node.value))
    for src in sources.values():
        try:
            tree = ast.parse(src)
        except (SyntaxError, ValueError):
            continue
        docs = {id(d) for d in _docstrings(tree)}  # prose, never looked up
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if id(node) not in docs and node.value.isidentifier():
                    unsafe.add(node.value)  # a key that `**` could pass as an argument
    return unsafe


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def _docstrings(tree: ast.Module):
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                yield body[0].value


def rename(sources: dict[str, bytes], unsafe: set[str]) -> dict[str, bytes]:
    """`sources` (path -> .py source) with their functions' safe parameters renamed."""
    return renamed(sources, unsafe)[0]


Plans = list[tuple[str, dict[str, str]]]  # (function name, original -> short), in source order


def renamed(
    sources: dict[str, bytes], unsafe: set[str]
) -> tuple[dict[str, bytes], dict[str, Plans]]:
    """What `rename` returns, and per path each renaming function's name with its plan
    (names may repeat: methods of two classes)."""
    out: dict[str, bytes] = {}
    plans: dict[str, Plans] = {}
    for path, src in sources.items():
        out[path], plans[path] = _module(src, unsafe)
    return out, plans


def _module(src: bytes, unsafe: set[str]) -> tuple[bytes, Plans]:
    try:
        tree = ast.parse(src)
    except (SyntaxError, ValueError):
        return src, []  # mpy-cross will say why
    taken = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    taken |= {n.arg for n in ast.walk(tree) if isinstance(n, ast.arg)}
    taken |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    taken |= {
        a.asname or a.name.split(".")[0]
        for n in ast.walk(tree)
        if isinstance(n, (ast.Import, ast.ImportFrom))
        for a in n.names
    }
    taken |= {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    series = [n for n in _short_names() if n not in taken]
    edits: list[tuple[int, int, int, str]] = []  # line, start byte, end byte, new name
    plans: Plans = []
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            plan, fn_edits = _function(fn, unsafe, series)
            edits += fn_edits
            if plan:
                plans.append((fn.name, plan))
    return _apply(src, edits), plans


def _function(fn: ast.FunctionDef, unsafe: set[str], series: list[str]):
    a = fn.args
    params = a.posonlyargs + a.args + ([a.vararg] if a.vararg else [])
    nested, bound = set(), set()
    for node in _walk_body(fn):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            nested |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
            nested |= {n.arg for n in ast.walk(node) if isinstance(n, ast.arg)}
            if not isinstance(node, ast.Lambda):
                nested.add(node.name)
        elif isinstance(node, ast.comprehension):
            bound |= {n.id for n in ast.walk(node.target) if isinstance(n, ast.Name)}
    plan: dict[str, str] = {}
    free = iter(series)
    for p in params:
        if p.arg in _KEEP or p.arg in unsafe or p.arg in nested | bound:
            continue
        plan[p.arg] = next(free)
    if not plan:
        return plan, []
    edits = []
    for p in params:
        if p.arg in plan:
            edits.append((p.lineno, p.col_offset, p.col_offset + len(p.arg), plan[p.arg]))
    for node in _walk_body(fn):
        if isinstance(node, ast.Name) and node.id in plan:
            edits.append(
                (node.lineno, node.col_offset, node.col_offset + len(node.id), plan[node.id])
            )
    return plan, edits


def _walk_body(fn: ast.FunctionDef):
    # the function's own statements, nested scopes included (the caller checks them);
    # defaults and decorators belong to the enclosing scope
    for stmt in fn.body:
        yield from ast.walk(stmt)


def _short_names():
    for width in (1, 2):
        for chars in product(string.ascii_lowercase, repeat=width):
            yield "".join(chars)


def _apply(src: bytes, edits: list[tuple[int, int, int, str]]) -> bytes:
    if not edits:
        return src
    lines = src.splitlines(keepends=True)
    by_line: dict[int, list[tuple[int, int, str]]] = {}
    for row, start, end, new in edits:
        by_line.setdefault(row, []).append((start, end, new))
    for row, spans in by_line.items():
        line = lines[row - 1]  # ast columns are UTF-8 byte offsets: edit the bytes
        for start, end, new in sorted(set(spans), reverse=True):
            line = line[:start] + new.encode() + line[end:]
        lines[row - 1] = line
    return b"".join(lines)
