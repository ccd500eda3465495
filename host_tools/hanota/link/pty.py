"""Pseudo-terminal pairs in raw mode, for the simulated board's links and relays.

The slave side stays open in this process until close_pty(), so the master never sees
EIO while the peer (MicroPython, mpremote, the hub) closes and reopens the slave path.
"""

from __future__ import annotations

import os
import tty

_SLAVES: dict[int, int] = {}


def open_pty() -> tuple[int, str]:
    """A raw pty pair: (master fd, slave path). Release it with close_pty(master_fd)."""
    master, slave = os.openpty()
    tty.setraw(slave)
    _SLAVES[master] = slave
    return master, os.ttyname(slave)


def close_pty(master_fd: int) -> None:
    """Close a pair made by open_pty (master and the slave fd kept open here)."""
    slave = _SLAVES.pop(master_fd, None)
    for fd in (master_fd, slave):
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass
