"""Issue 3: a runner with many boards has fds above 1024; select.select() fails there
(at 64 boards about 33 console relays died). The relays must work with any fd number."""

from __future__ import annotations

import contextlib
import os
import resource
import time

import pytest
from hanota.sim import ptys
from hanota.sim.runner import SimBoard
from simapps import ECHO, make_board, wait_console

HIGH = 1100  # fds opened before the board's, so the board's are all above FD_SETSIZE


@contextlib.contextmanager
def fds_above_1024():
    """Open dummy fds until the next fd is above 1024 (soft RLIMIT_NOFILE raised within
    the hard limit if needed); close them after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = HIGH + 200
    if hard != resource.RLIM_INFINITY and hard < want:
        pytest.skip(f"hard RLIMIT_NOFILE {hard} < {want}")
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    dummies: list[int] = []

    def fill() -> None:
        # open until an fd comes back >= HIGH: no free fd left below it. Call again right
        # before making the fds under test: another thread of this worker (a previous
        # test's board) may have closed a low fd since.
        while True:
            fd = os.open(os.devnull, os.O_RDONLY)
            dummies.append(fd)
            if fd >= HIGH:
                return

    try:
        fill()
        yield fill
    finally:
        for fd in dummies:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _read_until(fd: int, want: bytes, timeout: float = 5.0) -> bytes:
    os.set_blocking(fd, False)
    got, end = b"", time.monotonic() + timeout
    while want not in got and time.monotonic() < end:
        try:
            got += os.read(fd, 4096)
        except BlockingIOError:
            time.sleep(0.02)
    return got


def test_console_relay_works_with_fds_above_1024(tmp_path):
    with fds_above_1024() as fill:
        fill()
        con = ptys.ConsolePty(tmp_path / "console.log")
        try:
            slave = con.new_inner()
            assert min(con._outer, slave) > 1024  # the case select() cannot handle
            user = os.open(con.path, os.O_RDWR | os.O_NOCTTY)
            try:
                os.write(slave, b"board says hi\r\n")  # board -> user
                assert b"board says hi" in _read_until(user, b"board says hi")
                os.write(user, b"user types\r")  # user -> board
                assert b"user types" in _read_until(slave, b"user types")
            finally:
                os.close(user)
                os.close(slave)
        finally:
            con.close()
    assert b"board says hi" in (tmp_path / "console.log").read_bytes()


@pytest.mark.micropython
def test_sim_board_console_and_han_with_fds_above_1024(tmp_path):
    directory = make_board(tmp_path, ECHO)
    with fds_above_1024() as fill:
        fill()
        with SimBoard(directory) as board:
            _check_board(board)


def _check_board(board: SimBoard) -> None:
    board.wait_for("boot")
    wait_console(board, "APP confirmed")  # relayed by the console thread
    assert board.console._outer > 1024 and board.han.master > 1024
    fd = os.open(board.han_path, os.O_RDWR | os.O_NOCTTY)
    try:
        os.write(fd, b"ping")
        assert _read_until(fd, b"ping") == b"ping"
    finally:
        os.close(fd)
