"""The device build's name map, and console text with the short names read back.

The device build (hanota.mpycross) renames module-private names (`_chunk` -> `_c`,
hanota.privnames) and parameters (`lookup_key` -> `a`, hanota.argnames), so a board's
`AttributeError: ... '_c'` or `in _b` names what no source says. Every build writes its
map (JSON, `FORMAT`):

    {"format": "hanota-namemap/1", "modules": {"otaclient.download": {
        "private": {"_c": "_chunk", ...},              # short -> original
        "param": {"_b": {"a": ["lookup_key"]}, ...}}}} # function -> short -> originals

Modules are named as tracebacks name them (`otaclient.download`); a function is named as
it is on the device (its short name when it is private); a parameter's originals are a
list because two functions of one module may share a name (methods of two classes).

`translate` annotates a short name in place, the original after it in parentheses:
`'_c'` -> `'_c' (_chunk)`, `in _b` -> `in _b (_on_manifest)`. Which module's map applies:

- a traceback's `File "M", line N, in F` line: module M, for F;
- its exception line (the first line after the File lines), and the line just before
  `Traceback (most recent call last):` (the agent logs `agent: crashed: %r` there): the
  traceback's modules, innermost frame first, the first that has the name deciding;
  parameters only of the innermost frame's function, and only quoted (`'a'`);
- any other line: quoted names only, looked up in every module. When modules disagree
  the annotation lists them, `'_c' (otaclient.client:_crc | otaclient.download:_chunk)`,
  or beyond three, `'_c' (? 14 modules)`: such a line carries no module to decide by.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

FORMAT = "hanota-namemap/1"
_MAX_LISTED = 3
_TRACEBACK = re.compile(r"\s*Traceback \(most recent call last\):")
_FILE = re.compile(r'(\s*File "([^"]+)", line \d+, in )(\S+)')
_QUOTED = re.compile(r"""(['"])([A-Za-z_]\w*)\1""")
# a quoted name, or a bare private one (`_c`, not `x_c` nor `'_c` of a longer quote)
_NAME = re.compile(r"""(['"])([A-Za-z_]\w*)\1|(?<![\w'"])(_[A-Za-z0-9]\w*)(?![\w'"])""")

NameMap = dict[str, Any]


def build(private: dict[str, dict[str, str]],
          params: dict[str, list[tuple[str, dict[str, str]]]]) -> NameMap:  # fmt: skip
    """The map from the build's plans, both by module name: `private` original -> short
    (privnames.plan), `params` [(function, original -> short)] (argnames.renamed)."""
    modules: dict[str, Any] = {}
    for mod in sorted(set(private) | set(params)):
        entry: dict[str, Any] = {}
        short = {new: old for old, new in private.get(mod, {}).items()}
        if short:
            entry["private"] = dict(sorted(short.items()))
        funcs: dict[str, dict[str, list[str]]] = {}
        for func, plan in params.get(mod, []):
            for old, new in plan.items():
                names = funcs.setdefault(func, {}).setdefault(new, [])
                if old not in names:
                    names.append(old)
        if funcs:
            entry["param"] = dict(sorted(funcs.items()))
        if entry:
            modules[mod] = entry
    return {"format": FORMAT, "modules": modules}


def dumps(nmap: NameMap) -> str:
    return json.dumps(nmap, indent=1, sort_keys=True) + "\n"


def load(path: Path) -> NameMap:
    """A map file; ValueError when it is not one."""
    nmap = json.loads(path.read_text())
    if not isinstance(nmap, dict) or nmap.get("format") != FORMAT:
        raise ValueError(f"{path}: not a name map ({FORMAT})")
    return nmap


def translate(text: str, nmap: NameMap) -> str:
    """`text` (console output, any line endings) with the short names annotated."""
    lines = text.splitlines(keepends=True)
    frames: dict[int, list[tuple[str, str]]] = {}  # line -> (module, function), innermost first
    files: set[int] = set()
    i = 0
    while i < len(lines):
        if not _TRACEBACK.match(lines[i]):
            i += 1
            continue
        j, stack = i + 1, []
        while j < len(lines) and (m := _FILE.match(lines[j])):
            stack.insert(0, (_module(m.group(2), nmap), m.group(3)))
            files.add(j)
            j += 1
        if i > 0 and i - 1 not in files and i - 1 not in frames:
            frames[i - 1] = stack
        if j < len(lines):
            frames[j] = stack
        i = j
    out = []
    for n, line in enumerate(lines):
        if n in files:
            out.append(_file_line(line, nmap))
        elif n in frames:
            out.append(_error_line(line, frames[n], nmap))
        else:
            out.append(_QUOTED.sub(lambda m: _anywhere(m, nmap), line))
    return "".join(out)


def _module(name: str, nmap: NameMap) -> str:
    # `otaclient.client` as mpy-cross names it; a path (`/rom/otaclient/client.mpy`) too
    mods = nmap["modules"]
    if name in mods:
        return name
    dotted = re.sub(r"\.m?py$", "", name).strip("/").replace("/", ".")
    hits = [m for m in mods if dotted == m or dotted.endswith("." + m)]
    return max(hits, key=len) if hits else name


def _file_line(line: str, nmap: NameMap) -> str:
    m = _FILE.match(line)
    assert m is not None
    original = _private(nmap, _module(m.group(2), nmap), m.group(3))
    if original is None:
        return line
    return line[: m.end()] + f" ({original})" + line[m.end() :]


def _error_line(line: str, stack: list[tuple[str, str]], nmap: NameMap) -> str:
    def one(m: re.Match[str]) -> str:
        name = m.group(2) or m.group(3)
        for mod, _func in stack:
            original = _private(nmap, mod, name)
            if original is not None:
                return f"{m.group(0)} ({original})"
        if m.group(2) and stack:  # a parameter: quoted, of the innermost function
            mod, func = stack[0]
            params = nmap["modules"].get(mod, {}).get("param", {}).get(func, {})
            if name in params:
                return f"{m.group(0)} ({' | '.join(params[name])})"
        return m.group(0)

    return _NAME.sub(one, line)  # one pass: an annotation is never read again


def _anywhere(m: re.Match[str], nmap: NameMap) -> str:
    name = m.group(2)
    hits = {
        mod: entry["private"][name]
        for mod, entry in nmap["modules"].items()
        if name in entry.get("private", {})
    }
    originals = sorted(set(hits.values()))
    if not originals:
        return m.group(0)
    if len(originals) == 1:
        return f"{m.group(0)} ({originals[0]})"
    if len(hits) > _MAX_LISTED:
        return f"{m.group(0)} (? {len(hits)} modules)"
    return m.group(0) + " (" + " | ".join(f"{mod}:{o}" for mod, o in sorted(hits.items())) + ")"


def _private(nmap: NameMap, module: str, name: str) -> str | None:
    return nmap["modules"].get(module, {}).get("private", {}).get(name)
