"""Fold the firmware's integer constants into the modules that use them (device build).

mpy-cross folds `NAME = const(value)` only inside the module that defines it. Elsewhere
`other.NAME`, or `NAME` taken by `from other import NAME`, is a lookup at run time, so
`NAME` stays in `other`'s globals (a slot in its dict table) and in the importer's, and
is one more qstr: heap on a 64-bit board. This pass, over the modules built together:

1. replaces each such use of an integer constant defined by one of them with its value
   (not where a name is rebound in the using module: then it is left alone);
2. drops the folded names from `from ... import` lines (`pass` when none is left);
3. renames a definition `_NAME` (a `_` const is not stored: mpy-cross keeps it out of
   the module) when no other module of the build and no string names it any more; a
   module that star-imports its definer gets `NAME = value` on its star-import line;
4. drops `const` from `from micropython import const` where every use is a module-level
   `NAME = const(value)`: mpy-cross folds those without the import (CPython needs it),
   and the import stores `const` in the module's globals, a slot in every module.

Line numbers do not change (edits stay on their lines; a shortened import statement
keeps its line count with blank lines), so tracebacks still point at the source. The
CPython tests and host tools run the source, which keeps every name.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections import Counter, defaultdict

_OPS = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.FloorDiv: lambda a, b: a // b,
    ast.Mod: lambda a, b: a % b,
    ast.LShift: lambda a, b: a << b,
    ast.RShift: lambda a, b: a >> b,
    ast.BitOr: lambda a, b: a | b,
    ast.BitAnd: lambda a, b: a & b,
    ast.BitXor: lambda a, b: a ^ b,
}


def fold(files: dict[str, bytes], others: dict[str, bytes] | None = None) -> dict[str, bytes]:
    """Sources of `files` (path -> .py source) with other modules' constants folded in.

    `others` (path -> source) may use the constants too but are not rewritten; a name
    they mention keeps its definition."""
    trees = {p: _parse(src) for p, src in files.items()}
    consts = {_module(p): _consts(t) for p, t in trees.items() if t is not None}
    stars = {_module(p): _star_sources(t) for p, t in trees.items() if t is not None}
    _add_reexports(trees, consts, stars)
    out = {}
    for path, src in files.items():
        tree = trees[path]
        out[path] = src if tree is None else _fold_uses(src, tree, consts)
    out = _drop_imports(out, trees, consts, others or {})
    out = _privatize(out, trees, stars, others or {})
    return {path: _drop_const_import(src) for path, src in out.items()}


def _add_reexports(trees, consts, stars):
    # `from m import NAME` and `from m import *` make m's constants the importer's too
    changed = True
    while changed:
        changed = False
        for path, tree in trees.items():
            if tree is None:
                continue
            mine = consts[_module(path)]
            for src, name in _bare_imports(tree):
                value = consts.get(src, {}).get(name)
                if value is not None and name not in mine:
                    mine[name], changed = value, True
            for src in stars[_module(path)]:
                for name, value in consts.get(src, {}).items():
                    if name not in mine:
                        mine[name], changed = value, True


def _bare_imports(tree: ast.Module):
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for a in node.names:
                if a.name != "*" and a.asname is None:
                    yield node.module, a.name


def _parse(src: bytes) -> ast.Module | None:
    try:
        return ast.parse(src)
    except (SyntaxError, ValueError):  # left as it is: mpy-cross will say why
        return None


def _module(path: str) -> str:
    parts = path[:-3].split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _consts(tree: ast.Module) -> dict[str, int]:
    # public `NAME = const(<integer expression>)` at module level, in order
    found: dict[str, int] = {}
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
            continue
        target, call = node.targets[0], node.value
        if not (isinstance(target, ast.Name) and isinstance(call, ast.Call)):
            continue
        if not (
            isinstance(call.func, ast.Name) and call.func.id == "const" and len(call.args) == 1
        ):
            continue
        value = _value(call.args[0], found)
        if value is not None and not target.id.startswith("_"):
            found[target.id] = value
    return found


def _value(node: ast.expr, known: dict[str, int]) -> int | None:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.Name):
        return known.get(node.id)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd, ast.Invert)):
        v = _value(node.operand, known)
        if v is None:
            return None
        return -v if isinstance(node.op, ast.USub) else ~v if isinstance(node.op, ast.Invert) else v
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        a, b = _value(node.left, known), _value(node.right, known)
        if a is None or b is None:
            return None
        try:
            return _OPS[type(node.op)](a, b)
        except (ZeroDivisionError, ValueError):
            return None
    return None


def _star_sources(tree: ast.Module) -> list[str]:
    return [n.module for n in tree.body
            if isinstance(n, ast.ImportFrom) and n.level == 0 and n.module
            and any(a.name == "*" for a in n.names)]  # fmt: skip


def _fold_uses(src: bytes, tree: ast.Module, consts: dict[str, dict[str, int]]) -> bytes:
    aliases: dict[str, str] = {}  # local name -> module whose constants it reaches
    bare: dict[str, int] = {}  # local name -> value (from m import NAME)
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for a in node.names:
                full = f"{node.module}.{a.name}"
                if full in consts:
                    aliases[a.asname or a.name] = full
                elif a.name in consts.get(node.module, {}):
                    bare[a.asname or a.name] = consts[node.module][a.name]
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.asname and a.name in consts:
                    aliases[a.asname] = a.name
    rebound = _rebound(tree)
    aliases = {k: v for k, v in aliases.items() if k not in rebound}
    bare = {k: v for k, v in bare.items() if k not in rebound}
    edits: list[tuple[int, int, int, bytes]] = []  # line, start col, end col, text
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load)
                and isinstance(node.value, ast.Name) and node.value.id in aliases
                and node.attr in consts[aliases[node.value.id]]):  # fmt: skip
            value = consts[aliases[node.value.id]][node.attr]
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in bare:
            value = bare[node.id]
        else:
            continue
        if node.lineno == node.end_lineno:
            text = repr(value) if value >= 0 else f"({value})"
            edits.append((node.lineno, node.col_offset, node.end_col_offset, text.encode()))
    lines = src.splitlines(keepends=True)
    for row, start, end, text in sorted(edits, key=lambda e: (e[0], -e[1])):
        lines[row - 1] = lines[row - 1][:start] + text + lines[row - 1][end:]
    return b"".join(lines)


def _rebound(tree: ast.Module) -> set[str]:
    # names bound anywhere other than by a module-level import: not safe to fold
    names: set[str] = set()
    top = {id(n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            names.update(node.names)
        elif isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in top:
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def _drop_imports(out, trees, consts, others):
    # a folded `from m import NAME` goes when this module no longer uses NAME and no
    # module could still take NAME from it: none outside the build names it, and no
    # module of the build still imports it from here or reads it as an attribute
    outside = _mentions({p: s for p, s in others.items() if p not in out})[0]
    needed = _needed(out)
    result = dict(out)
    for path, tree in trees.items():
        if tree is None:
            continue
        mod = _module(path)
        uses = _name_counts(result[path])
        lines = result[path].splitlines(keepends=True)
        for node in tree.body:
            if not (isinstance(node, ast.ImportFrom) and node.level == 0 and node.module):
                continue
            src = consts.get(node.module, {})
            keep = [a for a in node.names
                    if not (a.name in src and uses[a.asname or a.name] == 1
                            and not outside[a.asname or a.name]
                            and (mod, a.asname or a.name) not in needed)]  # fmt: skip
            if len(keep) != len(node.names):
                _rewrite_import(lines, node, keep)
        result[path] = b"".join(lines)
    return result


def _rewrite_import(lines: list[bytes], node: ast.ImportFrom, keep: list[ast.alias]) -> None:
    # the statement with only `keep` (`pass` if none), on its first line; its other lines
    # blank, so line numbers hold
    names = ", ".join(a.name + (f" as {a.asname}" if a.asname else "") for a in keep)
    stmt = f"from {node.module} import {names}" if keep else "pass"
    first = lines[node.lineno - 1]
    lines[node.lineno - 1] = first[: node.col_offset] + stmt.encode() + b"\n"
    for row in range(node.lineno, node.end_lineno or node.lineno):
        lines[row] = b"\n"


def _drop_const_import(src: bytes) -> bytes:
    tree = _parse(src)
    if tree is None:
        return src
    folded = set()  # the Name nodes mpy-cross folds: NAME = const(value) at module level
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name) and isinstance(node.value, ast.Call)
                and isinstance(node.value.func, ast.Name) and node.value.func.id == "const"
                and len(node.value.args) == 1 and not node.value.keywords):  # fmt: skip
            folded.add(id(node.value.func))
    uses = [n for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id == "const"]
    if any(id(n) not in folded for n in uses):
        return src  # const called or read some other way: it stays a global
    lines = src.splitlines(keepends=True)
    for node in tree.body:
        if not (isinstance(node, ast.ImportFrom) and node.module == "micropython"):
            continue
        keep = [a for a in node.names if not (a.name == "const" and a.asname is None)]
        if len(keep) != len(node.names):
            _rewrite_import(lines, node, keep)
    return b"".join(lines)


def _needed(out: dict[str, bytes]) -> set[tuple[str, str]]:
    # (module, name) pairs the folded build still reads from another module
    pairs = set()
    for src in out.values():
        tree = _parse(src)
        if tree is None:
            continue
        aliases = {}
        uses = _name_counts(src)
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                for a in node.names:
                    local = a.asname or a.name
                    aliases[local] = f"{node.module}.{a.name}"
                    if a.name != "*" and uses[local] > 1:
                        pairs.add((node.module, a.name))
            elif isinstance(node, ast.Import):
                for a in node.names:
                    aliases[a.asname or a.name.split(".")[0]] = (
                        a.name if a.asname else a.name.split(".")[0]
                    )
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                if node.value.id in aliases:
                    pairs.add((aliases[node.value.id], node.attr))
    return pairs


def _name_counts(src: bytes) -> Counter:
    # how often each name occurs in src (an import line counts as one use)
    return Counter(t.string for t in _tokens(src) if t.type == tokenize.NAME)


def _mentions(sources: dict[str, bytes]) -> tuple[dict[str, set[str]], set[str]]:
    # name -> modules whose code names it; words inside any string literal
    mentions: dict[str, set[str]] = defaultdict(set)
    in_strings: set[str] = set()
    for path, src in sources.items():
        for tok in _tokens(src):
            if tok.type == tokenize.NAME:
                mentions[tok.string].add(_module(path))
            elif tok.type == tokenize.STRING:
                in_strings.update(re.findall(r"\w+", tok.string))
    return mentions, in_strings


def _privatize(out, trees, stars, others):
    mentions, in_strings = _mentions({**others, **out})
    result = dict(out)
    for path, tree in trees.items():
        if tree is None:
            continue
        mod = _module(path)
        own = _consts(tree)
        gone = {n: v for n, v in own.items()
                if mentions[n] <= {mod} and n not in in_strings and "_" + n not in mentions}  # fmt: skip
        if not gone:
            continue
        result[path] = _rename(result[path], gone)
        for spath, star_mods in ((p, stars.get(_module(p), [])) for p in out):
            if mod in star_mods:
                result[spath] = _append_to_star(result[spath], mod, gone)
    return result


def _rename(src: bytes, names: dict[str, int]) -> bytes:
    lines = src.splitlines(keepends=True)
    edits: dict[int, list[tuple[int, str]]] = defaultdict(list)
    prev = None
    for tok in _tokens(src):
        if (
            tok.type == tokenize.NAME
            and tok.string in names
            and not (prev is not None and prev.type == tokenize.OP and prev.string == ".")
        ):
            edits[tok.start[0]].append((tok.start[1], tok.string))
        prev = tok
    for row, cols in edits.items():
        line = lines[row - 1].decode()
        for col, _name in sorted(cols, reverse=True):
            line = line[:col] + "_" + line[col:]
        lines[row - 1] = line.encode()
    return b"".join(lines)


def _append_to_star(src: bytes, source_mod: str, names: dict[str, int]) -> bytes:
    lines = src.splitlines(keepends=True)
    pattern = re.compile(rb"^from\s+" + re.escape(source_mod.encode()) + rb"\s+import\s+\*")
    for i, line in enumerate(lines):
        if pattern.match(line):
            body, nl = line.rstrip(b"\r\n"), line[len(line.rstrip(b"\r\n")) :]
            code = body.split(b"#")[0].rstrip()
            extra = "".join(f"; {n} = {v}" for n, v in names.items()).encode()
            lines[i] = code + extra + nl
            break
    return b"".join(lines)


def _tokens(src: bytes):
    try:
        yield from tokenize.tokenize(io.BytesIO(src).readline)
    except (tokenize.TokenError, SyntaxError):
        return
