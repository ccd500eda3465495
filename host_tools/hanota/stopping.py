"""SIGINT and SIGTERM stop a long command cleanly.

`stoppable(name)` wraps a command's entry function: the first SIGINT or SIGTERM becomes a
`Stopped` exception in the main thread, so every `finally`, context manager and atexit hook
runs (sim boards powered off, pools shut down, temporary directories removed). Then any
process still descending from this one is terminated (its process group too, when it
leads one), one line `NAME: stopped by SIGTERM` goes to stderr and the function returns
128 + the signal number. Later signals do not interrupt that teardown; if it is not over
after GRACE_S, every descendant is killed and the process exits there and then.

`Stopped` subclasses KeyboardInterrupt: `except Exception` does not swallow it and asyncio
passes it straight out of the event loop, as it does Ctrl-C. While an event loop runs in
the main thread it is raised from a callback of that loop, never inside a task: then
asyncio.run cancels every task and waits for each (every `async with` exits). Raised
inside a task, it would end that task and reach every task awaiting it in the middle of
their cancellation, leaving them pending.

`die_with_parent` is for the children themselves (preexec_fn, pool initializer): the
kernel signals them when their parent dies, even by SIGKILL, which no handler here sees.

It does not find processes that left the parent chain by themselves (double-forked
daemons): nothing these commands start does that.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

GRACE_S = 15.0  # the teardown after a signal; past it, descendants are killed
REAP_S = 3.0  # leftover descendants: SIGTERM, then SIGKILL after this long
SIGNALS = (signal.SIGINT, signal.SIGTERM)
_PR_SET_PDEATHSIG = 1


RESEND_S = 0.05  # a swallowed Stopped's signal is sent again after this long


class Stopped(KeyboardInterrupt):
    """The command was asked to stop by signal `signum`."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def signame(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def status(self) -> int:
        return 128 + self.signum


@contextlib.contextmanager
def raising(signals: tuple[int, ...] = SIGNALS,
            on_first: Callable[[int], None] | None = None) -> Iterator[None]:  # fmt: skip
    """While inside, the first of `signals` raises Stopped in the main thread (after
    calling on_first(signum)); later ones are ignored so they cannot cut the teardown
    short. A Stopped that lands where Python cannot raise (a gc callback, a __del__: it
    reaches sys.unraisablehook instead) is raised again: the signal is sent once more.
    Outside the main thread (no handlers possible there) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got: list[int] = []
    again: list[bool] = []  # the last Stopped was swallowed: the next signal raises anew

    def handler(signum: int, _frame: Any) -> None:
        if got and not again:
            return
        again.clear()
        if not got:
            got.append(signum)
            if on_first is not None:
                on_first(signum)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise Stopped(signum) from None
        loop.call_soon_threadsafe(_raise, signum)  # also wakes the loop from its select

    hook = sys.unraisablehook

    def unraisable(u: Any) -> None:
        if isinstance(u.exc_value, Stopped):
            # sent again a little later from another thread: handled at once, here, it
            # would be swallowed again (if it still is, this hook sends it once more)
            again.append(True)
            main, signum = threading.main_thread().ident, u.exc_value.signum
            resend = threading.Timer(RESEND_S, signal.pthread_kill, (main, signum))
            resend.daemon = True
            resend.start()
            return
        hook(u)

    old = {s: signal.signal(s, handler) for s in signals}
    sys.unraisablehook = unraisable
    try:
        yield
    finally:
        sys.unraisablehook = hook
        for s, h in old.items():
            signal.signal(s, h)


def _raise(signum: int) -> None:
    raise Stopped(signum)


def stoppable(name: str) -> Callable[[Callable[..., int]], Callable[..., int]]:
    """Decorate a command's entry function (returning its exit status) as described in
    the module docstring; `name` starts the line on stderr."""

    def wrap(func: Callable[..., int]) -> Callable[..., int]:
        @functools.wraps(func)
        def run(*args: Any, **kw: Any) -> int:
            if threading.current_thread() is not threading.main_thread():
                return func(*args, **kw)
            deadline = _Deadline(name)
            try:
                with raising(on_first=deadline.start):
                    try:
                        return func(*args, **kw)
                    except Stopped as exc:
                        reap()
                        sys.stderr.write(f"{name}: stopped by {exc.signame}\n")
                        sys.stderr.flush()
                        return exc.status
            finally:
                deadline.cancel()

        return run

    return wrap


class _Deadline:
    """GRACE_S after start(signum) the teardown is over, whatever it still waits for: what
    is left below this process is killed and the process exits. The clock's thread starts
    up front, not in the signal handler, which may run while the main thread holds
    threading's own locks; once the command returned without a signal it just ends."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.signum: int | None = None
        self._event = threading.Event()
        threading.Thread(target=self._run, name="stop-deadline", daemon=True).start()

    def start(self, signum: int) -> None:
        self.signum = signum
        self._event.set()

    def cancel(self) -> None:
        """No signal came: end the thread. After one, the clock keeps running to the
        process's exit (its shutdown may hang too)."""
        self._event.set()

    def _run(self) -> None:
        self._event.wait()
        if self.signum is None:
            return
        time.sleep(GRACE_S)
        kill_all(descendants(os.getpid()), signal.SIGKILL)
        sys.stderr.write(f"{self.name}: stopped by {signal.Signals(self.signum).name} "
                         f"(teardown cut short after {GRACE_S:.0f} s)\n")  # fmt: skip
        sys.stderr.flush()
        os._exit(128 + self.signum)


def descendants(root: int) -> list[int]:
    """Every live process below `root` in the parent chain (from /proc), nearest first."""
    kids: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        st = _stat(int(entry.name))
        if st is not None and st[0] != "Z":
            kids.setdefault(st[1], []).append(int(entry.name))
    out: list[int] = []
    todo = [root]
    while todo:
        for k in kids.get(todo.pop(0), []):
            out.append(k)
            todo.append(k)
    return out


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0].decode(), int(fields[1])


def alive(pid: int) -> bool:
    st = _stat(pid)
    return st is not None and st[0] != "Z"


def kill_all(pids: list[int], sig: int) -> None:
    """Signal each process, and its whole group when it leads one other than ours (a sim
    board's MicroPython runs in its own session, with whatever it started)."""
    ours = os.getpgrp()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if os.getpgid(pid) == pid != ours:
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)


def reap(wait_s: float = REAP_S) -> None:
    """Terminate what is still below this process once the teardown has run: SIGTERM,
    then SIGKILL whatever is left after wait_s. multiprocessing's resource tracker is
    spared: it exits by itself when this process does, and killed earlier it would be
    started again by the finalizers that still talk to it."""
    spare = _resource_tracker()
    pids = [p for p in descendants(os.getpid()) if p != spare]
    if not pids:
        return
    kill_all(pids, signal.SIGTERM)
    end = time.monotonic() + wait_s
    while time.monotonic() < end and any(alive(p) for p in pids):
        time.sleep(0.05)
    kill_all([p for p in pids if alive(p)], signal.SIGKILL)


def _resource_tracker() -> int | None:
    mod = sys.modules.get("multiprocessing.resource_tracker")
    tracker = getattr(mod, "_resource_tracker", None)
    return getattr(tracker, "_pid", None)


_libc = ctypes.CDLL(None, use_errno=True)


def die_with_parent(sig: int, parent: int) -> None:
    """In a child: get `sig` when the parent thread that started it ends (the whole
    parent process dying included). `parent` is the pid the child was started from: if
    that one is already gone (the child was re-parented), exit at once."""
    _libc.prctl(_PR_SET_PDEATHSIG, sig)
    if os.getppid() != parent:
        os._exit(128 + sig)


__all__ = ["GRACE_S", "Stopped", "descendants", "die_with_parent", "kill_all", "raising",
           "reap", "stoppable"]  # fmt: skip
