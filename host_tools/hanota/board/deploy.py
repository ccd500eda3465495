"""Deploy the agent and provisioning files to a board over its REPL, with mpremote.

The same commands reach a real board's USB console and a simulated board's console pty.
A production board (console "off") has no REPL: everything here refuses it up front.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import mpycross
from ..output import CommandError, log, plan
from ..paths import BUILD, FIRMWARE, mpremote

STORE = "/data"
# port files another kind of board never needs (keeps flash and import time down)
_NOT_FOR = {"esp32": {"unix.py", "simflash.py"}, "sim": {"esp32.py", "esp32_image.py"}}
# agent modules on the filesystem (./otaclient, ./ports), removed before a sim deploy
_CLEAN_AGENT = (
    'import os; exec(\'for d in ("otaclient", "ports"):\\n try:\\n'
    '  [os.remove(d + "/" + f) for f in os.listdir(d)]\\n  os.rmdir(d)\\n'
    " except OSError:\\n  pass')"
)
# stat, not listdir("/"): on a sim "/" is the host's root and /data is a mount point
_RM_KEYS = "import os; exec('try:\\n os.remove(\"/data/keys.json\")\\nexcept OSError:\\n pass')"
_MKDIR_DATA = 'import os; exec(\'try:\\n os.stat("/data")\\nexcept OSError:\\n os.mkdir("/data")\')'


def refuse_production(board: dict[str, Any], what: str) -> None:
    if board.get("console") == "off":
        raise CommandError(
            f'board {board["name"]!r} is a production board (console "off"): it has no REPL, '
            f"so {what} over the console is refused (R4: only the CH's over-the-air path "
            "changes its firmware). Use the development definition of this board instead."
        )


def agent_files(board: dict[str, Any], every: bool = False) -> list[tuple[Path, str]]:
    """(local file, remote path) for the agent tree: main.py, otaclient/, ports/ (with
    `every`, the port files this kind of board never needs too)."""
    skip = set() if every else _NOT_FOR.get(board["kind"], set())
    out: list[tuple[Path, str]] = []
    main = FIRMWARE / "main.py"
    if main.exists():
        out.append((main, "main.py"))
    for pkg in ("otaclient", "ports"):
        for f in sorted((FIRMWARE / pkg).glob("*.py")):
            if f.name not in skip:
                out.append((f, f"{pkg}/{f.name}"))
    return out


def stage(board: dict[str, Any], board_json: Path,
          on_board: dict[str, bytes] | None = None) -> tuple[Path, list[str]]:  # fmt: skip
    """Copy the agent tree (modules as .mpy) + board.json into build/stage/<board>-<hash>/;
    returns it and its top-level names. The directory is named by its content and never
    changed once made, so concurrent runs and printed dry-run lines stay valid.

    on_board: files the board already runs (a sim's slot: path -> bytes). Those that would
    go unchanged are left out: a copy on the filesystem would shadow the slot's module,
    which runs in place, and load all its bytecode into the heap instead."""
    files = [*agent_files(board, every=True), (board_json, "board.json")]
    wanted = {rel for _src, rel in agent_files(board)} | {"board.json"}
    h = hashlib.sha256(b"mpy\0")  # staged trees hold .mpy modules
    for src, rel in files:
        h.update(rel.encode() + b"\0" + src.read_bytes() + b"\0")
    for rel, data in sorted((on_board or {}).items()):
        h.update(b"on-board\0" + rel.encode() + b"\0" + hashlib.sha256(data).digest())
    final = BUILD / "stage" / f"{board['name']}-{h.hexdigest()[:10]}"
    if not final.exists():
        tmp = final.with_name(f".{final.name}.{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        # modules go precompiled, as in app images: no compiler heap on the board. The
        # whole firmware is compiled, as an app image is (the build folds constants across
        # the modules built together, so a module's bytes depend on the set), then only
        # what this board needs is kept
        tree = [(rel, data) for rel, data in
                mpycross.compile_tree([(rel, src.read_bytes()) for src, rel in files])
                if rel.replace(".mpy", ".py") in wanted or rel in wanted]  # fmt: skip
        for rel, data in _changed(tree, on_board or {}):
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_bytes(data)
        try:
            os.rename(tmp, final)
        except OSError:  # another run made the same tree first
            shutil.rmtree(tmp, ignore_errors=True)
    return final, sorted(p.name for p in final.iterdir())


def _changed(tree: list[tuple[str, bytes]], on_board: dict[str, bytes]):
    """What of `tree` must go to the filesystem: files the board does not already run, and
    with any file of a package, the whole package (a package directory on the filesystem
    shadows the slot's: a partial copy would hide the slot's other modules)."""
    stale = {rel.split("/")[0] for rel, data in tree if "/" in rel and on_board.get(rel) != data}
    for rel, data in tree:
        if on_board.get(rel) != data or rel.split("/")[0] in stale and "/" in rel:
            yield rel, data


def connect(port: str, sim: bool) -> list[str]:
    """mpremote prefix; `resume` on sims keeps the running interpreter (no soft reset)."""
    return [mpremote(), "connect", port] + (["resume"] if sim else [])


def deploy_cmds(port: str, staged: Path, names: list[str], sim: bool,
                clean: bool = False) -> list[list[str]]:  # fmt: skip
    """mpremote lines copying the staged tree to the board's current directory; with clean,
    first remove agent modules an earlier deploy left there (they would shadow the slot)."""
    dirs = [str(staged / n) for n in names if (staged / n).is_dir()]
    files = [str(staged / n) for n in names if (staged / n).is_file()]
    cmd = connect(port, sim)
    if clean:
        cmd += ["exec", _CLEAN_AGENT, "+"]
    # ":." (the board's current directory: "/" on ESP32, DIR/fs on a sim, whose "/" is the
    # host's); "-r d :." copies d's files into ./d, unchanged files are skipped by hash
    if dirs:
        cmd += ["fs", "cp", "-r", *dirs, ":.", "+"]
    if files:
        cmd += ["fs", "cp", *files, ":."]
    return [cmd[:-1] if cmd[-1] == "+" else cmd]


def provision_cmds(port: str, staged: Path, sim: bool) -> list[list[str]]:
    names = ("identity.json", "trust.json", "authority.json", "agent_config.json")
    files = [str(staged / n) for n in names if (staged / n).exists()]
    # a sim's /data is mounted by its port (its "/" is the host's: never mkdir there)
    mkdir = [] if sim else ["exec", _MKDIR_DATA, "+"]
    # keys.json (the key sets after a rotation) would outrank the new trust/authority
    rm = ["exec", _RM_KEYS, "+"]
    return [connect(port, sim) + mkdir + rm + ["fs", "cp", *files, f":{STORE}/"]]


def reset_cmd(port: str) -> list[str]:
    return [mpremote(), "connect", port, "reset"]


def show(cmds: list[list[str]]) -> None:
    for c in cmds:
        plan(shlex.join(c))


def run(cmds: list[list[str]], what: str, timeout: float = 60, retries: int = 1) -> float:
    """Run mpremote commands, streaming their per-file lines to stderr as progress; a
    command that hangs (a REPL that missed the Ctrl-C) is killed and retried. Returns secs."""
    t0 = time.monotonic()
    for c in cmds:
        for attempt in range(retries + 1):
            log(f"{what}: {shlex.join(c)}")
            if _run_one(c, what, timeout):
                break
            if attempt == retries:
                raise CommandError(
                    f"{what}: mpremote did not finish in {timeout:.0f} s (tried {retries + 1}x)"
                )
            log(f"{what}: mpremote timed out after {timeout:.0f} s; retrying")
    return time.monotonic() - t0


def _run_one(cmd: list[str], what: str, timeout: float) -> bool:
    """True when done, False on timeout; raises CommandError when mpremote fails."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    tail: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            tail = (tail + [line.rstrip()])[-5:]
            log(f"  {line.rstrip()}")
        proc.wait()
    finally:
        timed_out = not timer.is_alive()
        timer.cancel()
    if timed_out and proc.returncode != 0:
        return False
    if proc.returncode != 0:
        raise CommandError(f"{what}: mpremote failed ({proc.returncode}): " + " | ".join(tail))
    return True


def with_private_dir(fn: Callable[[Path], Any]) -> Any:
    """A private (0700) temporary directory for files holding the device key; removed after."""
    with tempfile.TemporaryDirectory(prefix="hanota-provision-") as tmp:
        return fn(Path(tmp))
