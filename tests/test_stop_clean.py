"""Long commands stop everything they started on SIGINT and SIGTERM.

Each test starts a command with a small workload, waits until its children run (pool
workers, sim boards' MicroPython, a fuzz target), signals it, and checks that it exited
with 128+signal and one line `NAME: stopped by SIG...` last on stderr, and that none of
its processes is left. A process belongs to the run when its environment carries the
run's marker (everything the command starts inherits it) or its working directory or
environment points into the run's directory (a sim board's MicroPython gets a fresh
environment, but runs in DIR/fs with HANOTA_BOOT=DIR/run/boot.json): found that way, a
child re-parented to init when its parent died still counts.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from hanota import paths

pytestmark = [
    pytest.mark.sim,
    pytest.mark.micropython,
    pytest.mark.skipif(not (paths.FIRMWARE / "main.py").is_file(), reason="no agent"),
]

MARK = "HANOTA_STOP_TEST"
EXIT_S = 10  # from the signal to the command's exit
GONE_S = 5  # then until its last process is gone


class Run:
    """One command under test: its process, its marker and its directory."""

    def __init__(self, args: list[str], tmp: Path, extra_env: dict[str, str] | None = None,
                 session: bool = False):  # fmt: skip
        self.tmp = tmp
        self.session = session  # own session: a signal goes to its group, as Ctrl-C does
        self.marker = uuid.uuid4().hex
        env = dict(os.environ, TMPDIR=str(tmp), **{MARK: self.marker}, **(extra_env or {}))
        self.err_path = tmp / "stderr.txt"
        with self.err_path.open("w") as err:
            self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err, env=env,
                                         cwd=paths.ROOT, start_new_session=session)  # fmt: skip

    def procs(self) -> dict[int, str]:
        """pid -> command line of every live process of this run ("board: " first for a
        sim board's MicroPython)."""
        out = {}
        needle = f"{MARK}={self.marker}".encode()
        where = str(self.tmp).encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                if _state(entry) == "Z":
                    continue
                environ = (entry / "environ").read_bytes()
                cwd = os.readlink(entry / "cwd").encode()
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:  # gone meanwhile, or not ours to read
                continue
            if needle in environ or cwd.startswith(where) or where in environ:
                board = b"\0HANOTA_BOOT=" in b"\0" + environ
                out[int(entry.name)] = ("board: " if board else "") + cmd
        return out

    def boards(self) -> dict[int, str]:
        """This run's sim boards (MicroPython started by a SimBoard: HANOTA_BOOT set)."""
        return {p: c for p, c in self.procs().items() if c.startswith("board: ")}

    def wait_until(self, what: str, cond: Callable[[], bool], timeout: float) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                pytest.fail(f"the command ended before {what}:\n{self.stderr()[-3000:]}")
            if cond():
                return
            time.sleep(0.1)
        self.kill()
        pytest.fail(f"no {what} within {timeout} s:\n{self.stderr()[-3000:]}")

    def handles_signals(self) -> bool:
        """The command has its SIGINT/SIGTERM handlers in place (caught in its mask)."""
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        caught = int(status.split("SigCgt:")[1].split()[0], 16)
        return all(caught >> (s - 1) & 1 for s in (signal.SIGINT, signal.SIGTERM))

    def stop(self, sig: signal.Signals) -> int:
        """Send sig (to the group when the command has its own session); the exit status,
        once every process of the run is gone."""
        before = self.procs()
        assert before, "nothing running to stop"
        if self.session:
            os.killpg(self.proc.pid, sig)
        else:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(EXIT_S)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"still running {EXIT_S} s after {sig.name}:\n{self.stderr()[-3000:]}")
        end = time.monotonic() + GONE_S
        while (left := self.procs()) and time.monotonic() < end:
            time.sleep(0.1)
        if left:
            self.kill()  # not to leave them to the next test
        assert not left, f"left running after {sig.name} (of {before}): {left}"
        return rc

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def kill(self) -> None:
        """Clean up after a failed test: the command and everything of its run."""
        self.proc.kill()
        self.proc.wait()
        for pid in self.procs():
            try:
                os.killpg(pid, signal.SIGKILL) if os.getpgid(pid) == pid else os.kill(pid, 9)
            except ProcessLookupError:
                pass


def _state(entry: Path) -> str:
    return (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]


def stopped(run: Run, rc: int, name: str, sig: signal.Signals) -> None:
    """Exit status 128+sig, the line last on stderr, and a teardown that went in order
    (no traceback, no asyncio task abandoned half-cancelled)."""
    err = run.stderr()
    assert rc == 128 + sig, (rc, err[-3000:])
    assert err.rstrip("\n").rsplit("\n", 1)[-1] == f"{name}: stopped by {sig.name}", err[-3000:]
    assert "Traceback" not in err and "Task was destroyed" not in err, err[-3000:]


def sweep_with_workers(tmp_path: Path) -> Run:
    """A small sweep, once both its pool workers run and one of them runs a board."""
    run = Run([sys.executable, "-m", "hanota.sweep", "--quick", "--update", "plain",
               "--update", "compressed", "--jobs", "2", "--size", "80000", "--max-size",
               "50000", "--workdir", str(tmp_path / "sweep")], tmp_path)  # fmt: skip

    def workers_with_boards() -> bool:
        workers = [c for c in run.procs().values() if "spawn_main" in c]
        return len(workers) == 2 and len(run.boards()) >= 1

    run.wait_until("2 pool workers running boards", workers_with_boards, 60)
    return run


def test_sweep_sigterm_stops_pool_workers_and_their_boards(tmp_path):
    run = sweep_with_workers(tmp_path)
    stopped(run, run.stop(signal.SIGTERM), "sweep", signal.SIGTERM)


def test_sweep_killed_outright_leaves_no_worker_or_board(tmp_path):
    """SIGKILL reaches no handler: the workers learn of it from the kernel."""
    run = sweep_with_workers(tmp_path)
    assert run.stop(signal.SIGKILL) == -signal.SIGKILL


def test_faults_ctrl_c_stops_its_boards_and_removes_its_temp_dir(tmp_path):
    run = Run([sys.executable, "-m", "hanota.faults", "--class", "mixed", "--seeds", "2",
               "--jobs", "2", "--pad-to", "80000", "--max-size", "50000"], tmp_path,
              session=True)  # fmt: skip
    run.wait_until("2 sim boards", lambda: len(run.boards()) == 2, 60)
    stopped(run, run.stop(signal.SIGINT), "faults", signal.SIGINT)
    assert not list(tmp_path.glob("hanota-faults-*"))


def test_faults_sigterm_stops_its_boards(tmp_path):
    run = Run([sys.executable, "-m", "hanota.faults", "--class", "mixed", "--seeds", "1",
               "--pad-to", "80000", "--max-size", "50000", "--workdir",
               str(tmp_path / "faults")], tmp_path)  # fmt: skip
    run.wait_until("a sim board", lambda: len(run.boards()) == 1, 60)
    stopped(run, run.stop(signal.SIGTERM), "faults", signal.SIGTERM)


def test_bench_sigterm_stops_its_board_and_removes_its_temp_dir(tmp_path):
    run = Run([sys.executable, "-m", "hanota.cli", "bench", "--only", "simheap", "--quick",
               "--out", str(tmp_path / "out" / "bench.md")], tmp_path)  # fmt: skip
    run.wait_until("a sim board", lambda: len(run.boards()) >= 1, 60)
    stopped(run, run.stop(signal.SIGTERM), "bench", signal.SIGTERM)
    assert not list(tmp_path.glob("hanota-bench-*"))
    assert not (tmp_path / "out" / "bench.md").exists()  # no report of a stopped run


def test_demo_sigterm_stops_both_boards(tmp_path):
    run = Run([sys.executable, "-m", "hanota.cli", "demo", "--workdir", str(tmp_path / "demo"),
               "--pad-to", "80000", "--timeout", "60"], tmp_path)  # fmt: skip
    run.wait_until("2 sim boards", lambda: len(run.boards()) == 2, 60)
    stopped(run, run.stop(signal.SIGTERM), "demo", signal.SIGTERM)


# atheris (libFuzzer) in its place, for runs where it is not installed: what the fuzz
# command starts is then a process that, like atheris.Fuzz(), never returns
FAKE_ATHERIS = """
import contextlib, time
def instrument_imports(**kw): return contextlib.nullcontext()
def Setup(argv, fn): pass
def Fuzz():
    while True: time.sleep(1)
"""


def test_fuzz_sigterm_stops_its_target_process(tmp_path):
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "atheris.py").write_text(FAKE_ATHERIS)
    pythonpath = os.pathsep.join(p for p in (str(fake), os.environ.get("PYTHONPATH")) if p)
    run = Run([sys.executable, "-m", "hanota.fuzz", "--engine", "atheris", "--seconds", "60",
               "--target", "image_parser"], tmp_path, {"PYTHONPATH": pythonpath})  # fmt: skip
    targets = lambda: [c for c in run.procs().values() if "hanota.fuzz.worker" in c]  # noqa: E731
    run.wait_until("the fuzz target's process", lambda: len(targets()) == 1, 30)
    stopped(run, run.stop(signal.SIGTERM), "fuzz", signal.SIGTERM)


def test_fuzz_sigint_stops_the_hypothesis_engine(tmp_path):
    run = Run([sys.executable, "-m", "hanota.fuzz", "--engine", "hypothesis", "--seconds",
               "60", "--target", "image_parser"], tmp_path)  # fmt: skip
    run.wait_until("the command's signal handlers", run.handles_signals, 20)
    time.sleep(1)  # into the fuzzing loop
    stopped(run, run.stop(signal.SIGINT), "fuzz", signal.SIGINT)


# stopping.stoppable itself, on a command made to misbehave: its child ignores SIGTERM,
# or its teardown hangs
MISBEHAVING = """
import subprocess, sys, time
from hanota import stopping
stopping.GRACE_S = 2 if sys.argv[1] == "hang" else 15
@stopping.stoppable("misbehaving")
def main():
    subprocess.Popen(["sh", "-c", "trap '' TERM; sleep 1000"])
    try:
        time.sleep(1000)
    finally:
        time.sleep(1000 if sys.argv[1] == "hang" else 0)
    return 0
sys.exit(main())
"""


@pytest.mark.parametrize("how", ["clean", "hang"])
def test_stop_reaches_children_that_ignore_sigterm_and_teardowns_that_hang(tmp_path, how):
    run = Run([sys.executable, "-c", MISBEHAVING, how], tmp_path)
    sh = lambda: [c for c in run.procs().values() if c.startswith("sh ")]  # noqa: E731
    run.wait_until("its child", lambda: sh() and run.handles_signals(), 20)
    t0 = time.monotonic()
    rc = run.stop(signal.SIGTERM)
    assert rc == 128 + signal.SIGTERM, run.stderr()
    if how == "hang":  # cut short at GRACE_S
        assert 1.5 < time.monotonic() - t0 < 5
        tail = "stopped by SIGTERM (teardown cut short after 2 s)"
    else:
        tail = "stopped by SIGTERM"
    assert run.stderr().rstrip("\n").rsplit("\n", 1)[-1] == f"misbehaving: {tail}"


def test_a_stop_landing_where_python_ignores_exceptions_is_raised_again():
    """A signal handled inside a gc callback raises Stopped there, where Python can only
    report it (sys.unraisablehook): it must still stop the command (the fuzz engine's gc
    callback swallowed one and the run went on)."""
    import gc

    from hanota.stopping import Stopped, raising

    fired: list[bool] = []

    def callback(phase: str, _info: dict) -> None:
        if phase == "start" and not fired:
            fired.append(True)
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(10_000):  # the handler runs here, inside the callback
                pass

    gc.callbacks.append(callback)
    try:
        t0 = time.monotonic()
        with pytest.raises(Stopped) as exc, raising():
            gc.collect()
            time.sleep(5)  # the Stopped raised again arrives here, at once
        assert exc.value.signum == signal.SIGTERM and fired
        assert time.monotonic() - t0 < 2
    finally:
        gc.callbacks.remove(callback)
