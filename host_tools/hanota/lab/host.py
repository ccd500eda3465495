"""One lab host: `python -m hanota.lab.host DIR HOST` stands for one machine boards are
wired to. It runs the host's sim boards (created in DIR/boards/PLACE if they have no
flash yet; never provisioned), a console and a HAN endpoint per board, the power switch,
and its own `labgrid-exporter --name HOST` publishing them to the lab's coordinator; it
prints `ready` on stdout once every board has booted and the exporter is started, then
runs until SIGINT or SIGTERM.

The `hanota lab` parent starts it as the leader of its own process group: killing that
group is the host lost (exporter gone, connections reset, boards off: MicroPython dies
with the thread that started it). An exporter that exits while the host runs (it does,
with status 100, when the coordinator goes away) is started again after a second, as
labgrid's systemd unit does.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..output import log
from ..paths import venv_bin
from ..sim.create import create
from ..stopping import die_with_parent, stoppable
from . import config
from .board import LabBoard
from .power import PowerSwitch

RESTART_S = 1.0  # an exporter that exited is started again after this long
STOP_S = 5.0  # an exporter not gone this long after SIGTERM is killed


class Exporter:
    """labgrid-exporter for this host, kept running (a thread waits on it)."""

    def __init__(self, coordinator: str, name: str, cfg: Path, log_path: Path,
                 on_start: Callable[[int], None]) -> None:  # fmt: skip
        self.cmd = [venv_bin("labgrid-exporter"), "-c", coordinator, "--name", name,
                    "--hostname", config.ADDRESS, str(cfg)]  # fmt: skip
        self.log_path = log_path
        self.on_start = on_start
        self.proc: subprocess.Popen | None = None
        self._stop = threading.Event()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._keep, name="exporter", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._started.wait(30)

    def _spawn(self) -> subprocess.Popen:
        with open(self.log_path, "ab") as out:
            # the preexec runs in the child: it dies with this thread, which lives as
            # long as the host
            return subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, cwd=self.log_path.parent,
                                    preexec_fn=functools.partial(
                                        die_with_parent, signal.SIGKILL, os.getpid()))  # fmt: skip

    def _keep(self) -> None:
        while not self._stop.is_set():
            self.proc = self._spawn()
            self.on_start(self.proc.pid)
            self._started.set()
            while self.proc.poll() is None and not self._stop.wait(0.2):
                pass
            if self._stop.is_set():
                break
            log(f"lab: exporter of {self.cmd[4]} exited ({self.proc.returncode}): again "
                f"in {RESTART_S:.0f} s")  # fmt: skip
            self._stop.wait(RESTART_S)
        self._end()

    def _end(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(STOP_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(STOP_S + 5)


def _status(path: Path, exporter_pid: int) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), "exporter_pid": exporter_pid}) + "\n")
    os.replace(tmp, path)


def run_host(directory: Path, name: str) -> int:
    layout = config.load(directory)
    if layout is None:
        log(f"lab host: no {config.LAB_JSON} in {directory}")
        return 2
    host = config.host_entry(layout, name)
    here = Path(host["config"]).parent
    here.mkdir(parents=True, exist_ok=True)
    Path(host["config"]).write_text(config.exporter_yaml(layout, name))
    places = {p: layout["places"][p] for p in host["places"]}
    boards: list[LabBoard] = []
    switch = exporter = None
    try:
        for place, p in places.items():
            boards.append(LabBoard(place, Path(p["board_dir"]), p["console_port"],
                                   p["han_port"]))  # fmt: skip
        new = [b.dir for b in boards if not (b.dir / "flash.bin").is_file()]
        with ThreadPoolExecutor(max(1, len(new))) as pool:  # each formats with MicroPython
            list(pool.map(lambda d: create(d, layout["board"], layout["factory_version"]), new))
        with ThreadPoolExecutor(max(1, len(boards))) as pool:
            list(pool.map(lambda b: b.power(True), boards))
        switch = PowerSwitch(host["power_port"], {p["index"]: b for b, p in
                                                  zip(boards, places.values(), strict=True)})  # fmt: skip
        exporter = Exporter(layout["coordinator"], name, Path(host["config"]),
                            here / "exporter.log",
                            functools.partial(_status, here / "status.json"))  # fmt: skip
        exporter.start()
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        log(f"lab: {name} up: {', '.join(places)} (pid {os.getpid()})")
        while True:
            time.sleep(3600)
    finally:
        if exporter is not None:
            exporter.stop()
        if switch is not None:
            switch.close()
        for b in boards:
            b.close()


@stoppable("lab host")
def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m hanota.lab.host", description=__doc__)
    p.add_argument("dir", type=Path, help="the lab's directory (holds lab.json)")
    p.add_argument("host", help="this host's name in lab.json (host1, host2 ...)")
    args = p.parse_args(argv)
    return run_host(args.dir.resolve(), args.host)


if __name__ == "__main__":
    sys.exit(main())
