"""A console reader for a board's serial port or a sim's console pty (miniterm style), that
hands the port over to esptool/mpremote and takes it back (pytest-embedded's use_esptool).

Hand-over protocol: the monitor writes build/monitor/<port name>.pid; a flashing or deploy
command sends it SIGUSR1 (close the port, print "[monitor paused]"), does its work, then
sends SIGUSR2 (reopen, "[monitor resumed]"). Ctrl-] quits.

Short names of the device build are read back in what the board prints (hanota.namemap:
`'_c'` -> `'_c' (_chunk)`): output is held until the port is quiet for one read (0.1 s)
or 4 KB are pending, so a traceback is translated whole, with the line before it.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .. import namemap
from ..output import log
from ..paths import BUILD

EXIT_CHAR = b"\x1d"  # Ctrl-]
READ_SIZE = 256
HOLD_MAX = 4096  # pending bytes written out even while the board keeps printing

MapSource = Callable[[], "namemap.NameMap | None"]


def pidfile(port: str) -> Path:
    return BUILD / "monitor" / (Path(port).name + ".pid")


@contextmanager
def handed_over(port: str) -> Iterator[None]:
    """Pause a monitor reading `port` (if one runs) for the duration of the block."""
    pid = _monitor_pid(port)
    if pid:
        os.kill(pid, signal.SIGUSR1)
        time.sleep(0.3)  # let it close the port
        log(f"monitor (pid {pid}) paused: port {port} handed over")
    try:
        yield
    finally:
        if pid and _alive(pid):
            os.kill(pid, signal.SIGUSR2)


def _monitor_pid(port: str) -> int | None:
    try:
        pid = int(pidfile(port).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


class Monitor:
    def __init__(self, port: str, baud: int):
        self.port, self.baud = port, baud
        self.paused = threading.Event()
        self.stop = threading.Event()
        self.ser = None
        self.nmap: namemap.NameMap | None = None  # set once loaded: output read back
        self._held = bytearray()

    def open(self) -> None:
        import serial

        self.ser = serial.Serial(self.port, self.baud, timeout=0.1)

    def close(self) -> None:
        if self.ser is not None:
            self.ser.close()
            self.ser = None

    def reader(self) -> None:
        while not self.stop.is_set():
            if self.paused.is_set() or self.ser is None:
                self.show(b"")  # what is held goes out before the pause
                time.sleep(0.05)
                continue
            try:
                data = self.ser.read(READ_SIZE)
            except (OSError, TypeError, AttributeError):
                time.sleep(0.05)
                continue
            self.show(data)

    def show(self, data: bytes) -> None:
        """Write what the board printed, its short names read back once a map is loaded.
        A short read means the port went quiet: what is held is written then."""
        self._held += data
        if not self._held or (len(data) == READ_SIZE and len(self._held) < HOLD_MAX):
            return
        out = bytes(self._held)
        self._held.clear()
        if self.nmap is not None:  # latin-1: every byte through unchanged but the names
            out = namemap.translate(out.decode("latin-1"), self.nmap).encode("latin-1")
        sys.stdout.buffer.write(out)
        sys.stdout.flush()

    def load_map(self, source: MapSource) -> None:
        """Load the name map (building it may take seconds) while output already shows."""
        try:
            self.nmap = source()
        except Exception as exc:  # the monitor still shows everything, untranslated
            sys.stderr.write(
                f"\r\n[monitor: no name map, short names shown as they are: {exc}]\r\n"
            )

    def on_pause(self, *_: object) -> None:
        self.paused.set()
        self.close()
        sys.stderr.write("\r\n[monitor paused: port handed over]\r\n")

    def on_resume(self, *_: object) -> None:
        for _ in range(50):  # the board may be re-enumerating after a reset
            try:
                self.open()
                break
            except OSError:
                time.sleep(0.1)
        self.paused.clear()
        sys.stderr.write("\r\n[monitor resumed]\r\n")


def run(port: str, baud: int, names: MapSource | None = None) -> int:
    """Show `port` until Ctrl-]; with `names`, short names read back through its map."""
    mon = Monitor(port, baud)
    mon.open()
    if names is not None:
        threading.Thread(target=mon.load_map, args=(names,), daemon=True).start()
    pf = pidfile(port)
    pf.parent.mkdir(parents=True, exist_ok=True)
    pf.write_text(str(os.getpid()))
    signal.signal(signal.SIGUSR1, mon.on_pause)
    signal.signal(signal.SIGUSR2, mon.on_resume)
    log(f"--- monitor on {port} at {baud} baud; Ctrl-] quits ---")
    t = threading.Thread(target=mon.reader, daemon=True)
    t.start()
    try:
        _keyboard(mon)
    finally:
        mon.stop.set()
        mon.close()
        pf.unlink(missing_ok=True)
    return 0


def _keyboard(mon: Monitor) -> None:
    """Forward keystrokes (raw mode when stdin is a terminal) until Ctrl-] or EOF."""
    fd = sys.stdin.fileno()
    saved = None
    if os.isatty(fd):
        import termios
        import tty

        saved = termios.tcgetattr(fd)
        tty.setraw(fd)
    try:
        while True:
            ch = os.read(fd, 1)
            if not ch and saved is None:
                while True:  # stdin is not a terminal: show output until Ctrl-C
                    time.sleep(1)
            if not ch or ch == EXIT_CHAR:
                return
            if mon.ser is not None and not mon.paused.is_set():
                mon.ser.write(ch)
    finally:
        if saved is not None:
            import termios

            termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def map_file(path: Path) -> MapSource:
    """A map written by a device build (build/namemap/<digest>.json)."""

    def load() -> namemap.NameMap:
        nmap = namemap.load(path)
        log(f"monitor: short names read back with {path}")
        return nmap

    return load


def checkout_map(tree: dict[str, bytes] | None = None) -> MapSource:
    """The map of `tree` (a board's built app files, e.g. a sim's slot) when its build
    wrote one, else the map of this checkout's firmware as the device build makes it."""

    def load() -> namemap.NameMap:
        from .. import mpycross

        path = mpycross.namemap_path(sorted(tree.items())) if tree else None
        if path is None or not path.is_file():
            path = mpycross.firmware_namemap()
        return map_file(path)()

    return load
