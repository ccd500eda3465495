"""Starting and stopping MicroPython for a sim board: own session, console pty as its
controlling terminal, killed with its whole process group (no orphans).
"""

from __future__ import annotations

import fcntl
import functools
import os
import signal
import subprocess
import termios
from pathlib import Path

from .. import paths
from ..stopping import die_with_parent

_XIP = Path(__file__).with_name("xip.py")


def _child_setup(parent: int) -> None:
    # runs in the child between fork and exec: take the console as controlling terminal
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    die_with_parent(signal.SIGKILL, parent)  # the runner dies -> the board dies


def spawn_micropython(args: list[str], cwd: Path, tty_fd: int, han_fd: int,
                      app_dir: Path | None = None,
                      rom: tuple[Path, int, int] | None = None) -> subprocess.Popen:  # fmt: skip
    """`micropython ARGS` in cwd, session leader on tty_fd, with han_fd inherited.

    app_dir holds boot.json (HANOTA_BOOT). With rom (flash file, offset, length), the app
    slot is mapped into MicroPython by xip.py and sys.path is ['', '.frozen', '/rom'],
    where the boot snippet mounts it; without, app_dir is the unpacked slot on sys.path.
    Either way cwd's files shadow the app's, as a board's filesystem shadows frozen or
    romfs modules."""
    app_path = "/rom" if rom is not None else str(app_dir) if app_dir is not None else None
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/"),
        "MICROPYPATH": ".frozen" + (f":{app_path}" if app_path else ""),
        "HANOTA_BOOT": str((app_dir or cwd) / "boot.json"),
    }
    if rom is not None:
        python = paths.micropython_in_process()
        assert python, "rom mapping needs the in-process MicroPython (paths.micropython_in_process)"
        cmd = [python, str(_XIP), str(rom[0]), str(rom[1]), str(rom[2]), *args]
    else:
        cmd = [paths.micropython(), *args]
    return subprocess.Popen(
        cmd,
        cwd=cwd,
        stdin=tty_fd,
        stdout=tty_fd,
        stderr=tty_fd,
        start_new_session=True,
        preexec_fn=functools.partial(_child_setup, os.getpid()),
        pass_fds=[han_fd],
        env=env,
    )


def kill_group(proc: subprocess.Popen | None) -> None:
    """SIGKILL the board's session (MicroPython and anything it started) and reap it."""
    if proc is None:
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
