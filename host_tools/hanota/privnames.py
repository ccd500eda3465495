"""Shorten module-private names in device source before mpy-cross (the device build only).

Every distinct name a module uses becomes a qstr, interned in the heap when the module
loads: on the 64-bit unix port each costs ~11 bytes of pool plus its text, and the
pools grow by doubling (the agent's ~700 names needed a 640-entry pool for its last
~80). A name private to one module (`_acc_n`, `_on_manifest`, `_BODY_MAX`) can be
renamed without changing behaviour, and if every module renames its own to the same
short series (`_a`, `_b`, ...), the modules share those qstrs.

A name is renamed only when it is safe to: it starts with one underscore, appears as an
identifier in exactly one module of the firmware (so no module reaches another's), never
inside a string literal (getattr, f-strings) and never as a keyword (`f(_x=1)`, `def
f(_x=1)`: such a name can become a dict key, stored and read back by another build). Renaming is token by token within a
line, so line numbers (tracebacks) are unchanged. The CPython tests run the source; the
MicroPython ones run this output, through the same `mpycross.compile_tree`.
"""

from __future__ import annotations

import io
import re
import string
import tokenize
from collections import Counter
from itertools import product

_PRIVATE = re.compile(r"_[A-Za-z0-9]\w*\Z")
_ALPHABET = string.ascii_letters


def rename(files: dict[str, bytes], others: dict[str, bytes] | None = None) -> dict[str, bytes]:
    """Sources of `files` (path -> .py source) with their module-private names shortened.

    `others` (path -> source) are modules that may reference these names but are not
    rewritten (the rest of the firmware when only part of it is built)."""
    return apply(files, plan(files, others))


def plan(
    files: dict[str, bytes], others: dict[str, bytes] | None = None
) -> dict[str, dict[str, str]]:
    """Per path of `files`: original private name -> its short name (empty for a source
    that does not tokenize: it is left as it is, mpy-cross will say why)."""
    scans = {p: _scan(src) for p, src in {**(others or {}), **files}.items()}
    owners = Counter(n for scan in scans.values() if scan for n in scan[0])
    unsafe = set().union(*(scan[1] for scan in scans.values() if scan))
    out = {}
    for path in files:
        scan = scans[path]
        if scan is None:
            out[path] = {}
            continue
        ours = [n for n in scan[0] if _PRIVATE.match(n) and owners[n] == 1 and n not in unsafe]
        out[path] = _plan(ours, set(scan[0]))
    return out


def apply(files: dict[str, bytes], plans: dict[str, dict[str, str]]) -> dict[str, bytes]:
    """Sources of `files` with each path's plan (from `plan`) applied."""
    return {path: _apply(src, plans.get(path, {})) for path, src in files.items()}


def _scan(src: bytes) -> tuple[list[str], set[str]] | None:
    """(NAME tokens in first-appearance order, each once; words no rename may touch:
    those inside string literals and names used as keywords, NAME "=" within brackets),
    or None when the source does not tokenize."""
    seen: dict[str, None] = {}
    unsafe: set[str] = set()
    depth, prev = 0, None
    try:
        for tok in _tokens(src):
            if tok.type == tokenize.NAME:
                seen.setdefault(tok.string, None)
            elif tok.type == tokenize.STRING:
                unsafe.update(re.findall(r"\w+", tok.string))
            elif tok.type == tokenize.OP:
                depth += tok.string in "([{"
                depth -= tok.string in ")]}"
                if (
                    tok.string == "="
                    and depth > 0
                    and prev is not None
                    and prev.type == tokenize.NAME
                ):
                    unsafe.add(prev.string)
            prev = tok
    except (tokenize.TokenError, SyntaxError, UnicodeDecodeError):
        return None
    return list(seen), unsafe


def _plan(private: list[str], taken: set[str]) -> dict[str, str]:
    short = (n for n in _short_names() if n not in taken)
    return {name: next(short) for name in private}


def _short_names():
    for width in (1, 2, 3):
        for chars in product(_ALPHABET, repeat=width):
            yield "_" + "".join(chars)


def _apply(src: bytes, plan: dict[str, str]) -> bytes:
    if not plan:
        return src
    lines = src.decode().splitlines(keepends=True)
    edits: dict[int, list[tokenize.TokenInfo]] = {}
    for tok in _tokens(src):
        if tok.type == tokenize.NAME and tok.string in plan:
            edits.setdefault(tok.start[0], []).append(tok)
    for row, toks in edits.items():
        line = lines[row - 1]
        for tok in sorted(toks, key=lambda t: -t.start[1]):  # right to left: columns hold
            col = tok.start[1]
            line = line[:col] + plan[tok.string] + line[col + len(tok.string) :]
        lines[row - 1] = line
    return "".join(lines).encode()


def _tokens(src: bytes):
    return tokenize.tokenize(io.BytesIO(src).readline)
