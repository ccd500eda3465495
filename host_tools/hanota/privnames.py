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
    names = {p: _identifiers(s) for p, s in files.items()}
    broken = {p for p, n in names.items() if n is None}  # mpy-cross will say why
    owners: Counter[str] = Counter()
    in_strings: set[str] = set()
    for p, src in {**(others or {}), **files}.items():
        idents = names[p] if p in names else _identifiers(src)
        owners.update(idents or ())
        in_strings |= _unsafe_words(src) if idents is not None else set()
    out = {}
    for path, src in files.items():
        if path in broken:
            out[path] = src
            continue
        ours = [n for n in names[path] if _PRIVATE.match(n) and owners[n] == 1]
        ours = [n for n in ours if n not in in_strings]
        out[path] = _apply(src, _plan(ours, set(names[path])))
    return out


def _identifiers(src: bytes) -> list[str] | None:
    # NAME tokens in first-appearance order, each once; None when it does not tokenize
    seen: dict[str, None] = {}
    try:
        for tok in _tokens(src):
            if tok.type == tokenize.NAME:
                seen.setdefault(tok.string, None)
    except (tokenize.TokenError, SyntaxError, UnicodeDecodeError):
        return None
    return list(seen)


def _unsafe_words(src: bytes) -> set[str]:
    # words inside string literals, and names used as keywords (NAME "=" within brackets)
    words: set[str] = set()
    depth, prev = 0, None
    for tok in _tokens(src):
        if tok.type == tokenize.STRING:
            words.update(re.findall(r"\w+", tok.string))
        elif tok.type == tokenize.OP:
            depth += tok.string in "([{"
            depth -= tok.string in ")]}"
            if tok.string == "=" and depth > 0 and prev is not None and prev.type == tokenize.NAME:
                words.add(prev.string)
        prev = tok
    return words


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
