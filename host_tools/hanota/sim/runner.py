"""SimBoard: the host side of a simulated board, playing bootloader, power supply and watchdog.

Each boot: bootloader rules on flash.bin, the chosen app's ROMFS tree mapped into MicroPython
and mounted at /rom (xip.py; unpacked to DIR/run/ for a MicroPython binary that cannot map
it), boot.json for the port in DIR/run/, then `micropython -X heapsize=H -i main.py` on a
fresh console pty. The
port asks for a reset or dies at a power cut by `kill -9 $PPID`, leaving the reason in
DIR/ops. The watchdog is the one the app arms (port.watchdog(ms), as machine.WDT on an
ESP32: main.py arms it on a trial boot): once armed, a feed count in DIR/ops that stops
moving for ms resets the board. Nothing else ends a boot. Then it boots again.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from .. import paths
from ..board import defs
from . import appimage, bootloader, otadata, ptys
from .create import FS_DIR, OPS_FILE, write_ops
from .flash import FlashFile
from .process import kill_group, spawn_micropython

_POLL_S = 0.02
_EXIT_BACKOFF_S = 0.5
_OPS, _CUT, _EXIT, _WD, _FED = 0, 12, 24, 36, 48  # DIR/ops fields (ports/simflash.py)
# MicroPython runs the slot's main.py the way an ESP32 runs a frozen main.py: it wins over a
# main.py on the filesystem (pyexec_file_if_exists), while imports look in the filesystem
# (the cwd, DIR/fs) before the slot (sys.path ['', '.frozen', '/rom']). First, as an
# ESP32 port's start-up does with a romfs partition, mount the mapped slot at /rom
# (xip.py: HANOTA_ROM=address:length, outside the GC heap).
_MOUNT_ROM = (
    "import os\n"
    "if os.getenv('HANOTA_ROM'):\n"
    " import vfs,uctypes\n"
    " _a,_n=[int(v) for v in os.getenv('HANOTA_ROM').split(':')]\n"
    " vfs.mount(vfs.VfsRom(uctypes.bytearray_at(_a,_n)),'/rom')\n"
    " del _a,_n,vfs,uctypes\n"
)
_RUN_MAIN = "_m={main!r};exec(compile(open(_m).read(),_m,'exec'))"


class SimBoard:
    """One simulated board on DIR (made by `hanota sim create`)."""

    def __init__(self, directory: str | Path, *, heap: str | None = None,
                 watchdog_ms: int | None = None, cut_at: int | None = None) -> None:  # fmt: skip
        self.dir = Path(directory).resolve()
        self.board = defs.load(str(self.dir / "board.json"))
        self.flash = FlashFile(self.dir / "flash.bin", self.board)
        self.flash.check()
        self.heap = heap or self.board.get("heap", "64k")
        # the watchdog timeout the app is given (board["watchdog_ms"] in boot.json)
        self.watchdog_ms = watchdog_ms or self.board["watchdog_ms"]
        self.run_dir = self.dir / "run"  # the active slot, unpacked at every boot
        self.fs_dir = self.dir / FS_DIR  # the filesystem outside /data: persists
        self.console_log = self.dir / "console.log"
        self.events: list[dict[str, Any]] = []
        self.boot_count = 0
        self.running_slot: int | None = None
        self.running_version: int | None = None
        self.halted: str | None = None
        self._first_cut = cut_at
        self._cond = threading.Condition()
        self._stopping = False
        self._proc: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None
        self.han: ptys.HanPty | None = None
        self.console: ptys.ConsolePty | None = None

    # --- public API
    @property
    def han_path(self) -> str:
        return self.han.path if self.han else ""

    @property
    def console_path(self) -> str:
        return self.console.path if self.console else ""

    @property
    def ops(self) -> int:
        """Flash operations counted since start() (erase/write, slot, otadata and store)."""
        return self._field(_OPS)

    def cut_at(self, n: int) -> None:
        """Cut power in the middle of flash operation n (counted from start(); one shot)."""
        self._set_field(_CUT, b"%11d\n" % n)

    def start(self) -> SimBoard:
        """Power on (again, after stop(): new ptys, as a re-plugged board gets)."""
        self._stopping = False
        self.console_log.write_bytes(b"")
        write_ops(self.dir)
        if self._first_cut:
            self.cut_at(self._first_cut)
        self.han = ptys.HanPty()
        self.console = ptys.ConsolePty(self.console_log, self.board["console"] == "on")
        self._thread = threading.Thread(target=self._supervise, name="sim-board", daemon=True)
        self._thread.start()
        atexit.register(self.stop)
        return self

    def stop(self) -> None:
        """Power off: kill MicroPython and everything it started, close the ptys."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread:
            self._thread.join(timeout=10)
        kill_group(self._proc)
        for part in (self.console, self.han):
            if part:
                part.close()
        self.console = self.han = None
        atexit.unregister(self.stop)

    def power_cycle(self) -> None:
        """Cut the power now (between operations) and boot again."""
        self._event("power_cycle")
        kill_group(self._proc)

    def wait_for(self, event: str, timeout: float = 30.0, after: int = 0) -> dict[str, Any]:
        """The first event named `event` at index >= after; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for ev in self.events[after:]:
                    if ev["event"] == event:
                        return ev
                left = deadline - time.monotonic()
                if left <= 0 or self._stopping:
                    raise TimeoutError(f"no {event!r} event within {timeout}s: {self.events}")
                self._cond.wait(min(left, 0.2))

    def console_text(self) -> str:
        return self.console_log.read_bytes().decode(errors="replace")

    def __enter__(self) -> SimBoard:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- supervisor
    def _supervise(self) -> None:
        while not self._stopping:
            try:
                decision = bootloader.decide(self.flash)
            except bootloader.NoBootableApp as exc:
                self.halted = str(exc)
                self._event("no_bootable_app", error=str(exc))
                return
            for ev in decision.events:
                self._event(**ev)
            try:
                self._launch(decision)
            except (OSError, ValueError) as exc:  # unpack or spawn failed: the board is dead
                self.halted = f"runner error: {exc}"
                self._event("runner_error", error=str(exc))
                return
            reason = self._watch(decision)
            kill_group(self._proc)
            self._event(reason)
            if reason.startswith("exit"):  # main.py ended or crashed without a REPL
                with self._cond:
                    self._cond.wait(_EXIT_BACKOFF_S)  # no tight reboot loop

    def _launch(self, d: bootloader.BootDecision) -> None:
        assert self.han and self.console
        shutil.rmtree(self.run_dir, ignore_errors=True)
        self.run_dir.mkdir()
        rom = None
        if paths.micropython_in_process():  # map the slot: modules execute in place
            offset, _ = self.flash.part(f"ota_{d.slot}")
            rom = (self.flash.path, offset + appimage.HEADER_LEN, len(d.tree))
            main = "/rom/main.py"
        else:  # another MicroPython binary: the slot's files on disk, loaded into the heap
            appimage.unpack_to(d.tree, self.run_dir)
            main = str(self.run_dir / "main.py")
        self.boot_count += 1
        self.running_slot, self.running_version = d.slot, d.version
        self._set_field(_WD, b"%11d\n" % 0)  # a reset stops the watchdog: nothing armed
        self._set_field(_FED, b"%11d\n" % 0)
        (self.run_dir / "boot.json").write_text(json.dumps(self._boot_doc(d)))
        self.han.drain()
        self.fs_dir.mkdir(exist_ok=True)
        slave = self.console.new_inner()
        args = ["-X", f"heapsize={self.heap}"] + (["-i"] if self.board["console"] == "on" else [])
        args += ["-c", _MOUNT_ROM + _RUN_MAIN.format(main=main)]
        self._proc = spawn_micropython(args, self.fs_dir, slave, self.han.master, self.run_dir,
                                       rom)  # fmt: skip
        os.close(slave)
        self._event("boot", slot=f"ota_{d.slot}", version=d.version, xip=rom is not None,
                    pending_verify=d.pending_verify, boot=self.boot_count)  # fmt: skip

    def _boot_doc(self, d: bootloader.BootDecision) -> dict[str, Any]:
        assert self.han and self.console
        return {
            "slot": f"ota_{d.slot}",
            "slot_index": d.slot,
            "version": d.version,
            "pending_verify": d.pending_verify,
            "boot": self.boot_count,
            "flash": str(self.flash.path),
            "ops": str(self.dir / OPS_FILE),
            "partitions": {name: list(v) for name, v in self.flash.parts.items()},
            "board": {**self.board, "watchdog_ms": self.watchdog_ms},
            "han_fd": self.han.master,
            "han": self.han.path,
            "console": self.console.path,
            "cut_at": self._field(_CUT),
            "store": "/data",
        }

    def _watch(self, d: bootloader.BootDecision) -> str:
        assert self._proc
        trial = d.pending_verify
        armed, fed, fed_at = 0, 0, 0.0
        while True:
            with self._cond:
                if self._stopping:
                    return "stop"
                self._cond.wait(_POLL_S)
            if self._proc.poll() is not None:
                return self._exit_reason()
            if trial and self._confirmed(d.slot):
                trial = False
                self._event("confirmed", slot=f"ota_{d.slot}", version=d.version)
            now = time.monotonic()
            ms, count = self._field(_WD), self._field(_FED)
            if ms != armed:  # armed (or re-armed with a new timeout): the timer restarts
                armed, fed, fed_at = ms, count, now
                self._event("watchdog_armed", ms=ms)
            elif count != fed:
                fed, fed_at = count, now
            elif armed and now - fed_at > armed / 1000:
                return "watchdog"

    def _confirmed(self, slot: int) -> bool:
        entries = self.flash.otadata()
        chosen = otadata.select(entries)
        return (
            chosen >= 0 and entries[chosen].slot == slot and entries[chosen].state == otadata.VALID
        )

    def _exit_reason(self) -> str:
        assert self._proc
        reason = self._read(_EXIT, 12).strip().decode() or f"exit({self._proc.returncode})"
        self._set_field(_EXIT, b"%-11s\n" % b"")
        if reason == "cut":
            self._set_field(_CUT, b"%11d\n" % 0)
            return "power_cut"
        return reason

    def _event(self, event: str, **fields: Any) -> None:
        with self._cond:
            self.events.append({"event": event, "t": round(time.monotonic(), 3), **fields})
            self._cond.notify_all()

    # --- DIR/ops: "%11d\n" ops | "%11d\n" cut-at | "%-11s\n" exit reason
    def _read(self, off: int, n: int) -> bytes:
        with open(self.dir / OPS_FILE, "rb") as f:
            f.seek(off)
            return f.read(n)

    def _field(self, off: int) -> int:
        return int(self._read(off, 12) or b"0")

    def _set_field(self, off: int, data: bytes) -> None:
        with open(self.dir / OPS_FILE, "r+b") as f:
            f.seek(off)
            f.write(data)
