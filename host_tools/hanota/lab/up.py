"""The whole local lab: a labgrid coordinator, M hosts (each a process with its own
labgrid exporter, see host.py), N sim boards spread over them, a place per board.

    with Lab(directory, boards=4, exporters=2) as lab:
        lab.coordinator          # "127.0.0.1:PORT"
        lab.places               # ["sim-ppmid-1", ...]
        lab.layout               # DIR/lab.json's document (config.py)
        lab.kill_host(1)         # host1's process group SIGKILLed: that host is lost
        lab.start_host(1)        # back on the same ports and board directories
        lab.restart_coordinator()

start() returns once every place exists with its match `HOST/PLACE/*`, every place's
console, han and power resources are available at the coordinator and every board has
booted. The coordinator runs in DIR/coordinator, where it keeps places.yaml; labgrid
writes that file at most 15 s after a change (its save poll), so restart_coordinator()
waits for the file to hold every place before stopping it. labgrid drops acquisitions
when it loads places.yaml: after a coordinator restart every place is released.

The coordinator and the hosts get SIGTERM when the thread that started them ends (their
parent-death signal): use a Lab from one thread that lives as long as it does.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..output import log
from ..paths import venv_bin
from ..sim.create import FACTORY_VERSION
from ..stopping import die_with_parent
from . import client, config

HOST_READY_S = 300.0  # creating and booting a host's boards (~4 s a board; 8 a host: 105 s loaded)
RESOURCES_S = 60.0
STOP_S = 20.0
SAVE_WAIT_S = 20.0  # labgrid's coordinator saves places.yaml every 15 s
RESOURCE_NAMES = {"console": "NetworkSerialPort", "han": "NetworkSerialPort",
                  "power": "NetworkPowerPort"}  # fmt: skip


class LabError(RuntimeError):
    pass


class Lab:
    def __init__(self, directory: str | Path, boards: int = 4, exporters: int = 2,
                 board: str = "sim-ppmid", factory_version: int = FACTORY_VERSION) -> None:  # fmt: skip
        if boards < 1 or exporters < 1:
            raise ValueError("a lab needs at least one board and one exporter")
        self.dir = Path(directory).resolve()
        self.boards, self.exporters, self.board = boards, exporters, board
        self.factory_version = factory_version
        self.layout: dict = {}
        self.coordinator_proc: subprocess.Popen | None = None
        self.hosts: dict[str, subprocess.Popen] = {}

    # --- the lab's face
    @property
    def coordinator(self) -> str:
        return self.layout["coordinator"]

    @property
    def places(self) -> list[str]:
        return list(self.layout["places"])

    def host_of(self, place: str) -> str:
        return self.layout["places"][place]["host"]

    def host_places(self, host: int | str) -> list[str]:
        return config.host_entry(self.layout, _host(host))["places"]

    def __enter__(self) -> Lab:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- start and stop
    def start(self) -> Lab:
        self.dir.mkdir(parents=True, exist_ok=True)
        old = config.load(self.dir)
        self.layout = config.plan(self.dir, self.boards, self.exporters, self.board,
                                  self.factory_version)  # fmt: skip
        coord_dir = self.dir / "coordinator"
        if old is None or config.ports_of(old) != config.ports_of(self.layout):
            for stale in ("places.yaml", "resources.yaml"):  # another lab's places
                with contextlib.suppress(FileNotFoundError):
                    (coord_dir / stale).unlink()
        config.save(self.dir, self.layout)
        self._start_coordinator()
        for k in range(1, self.exporters + 1):
            self._spawn_host(config.host_name(k))
        for name in list(self.hosts):
            self._wait_ready(name)
        existing = client.places(self.coordinator)
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda p: client.ensure_place(
                self.coordinator, p, [f"{self.host_of(p)}/{p}/*"], existing), self.places))  # fmt: skip
        self.wait_resources(self.places)
        self._record()
        return self

    def stop(self) -> None:
        for name in list(self.hosts):
            self._stop_host(name, signal.SIGTERM)
        if self.coordinator_proc is not None:
            _stop(self.coordinator_proc, signal.SIGTERM, STOP_S)
            self.coordinator_proc = None
        if self.layout:
            self._record()

    # --- faults across hosts
    def kill_host(self, host: int | str) -> None:
        """The host is lost: its process group (host, exporter) gets SIGKILL; its boards'
        MicroPython die with it (their parent's death signal)."""
        self._stop_host(_host(host), signal.SIGKILL)
        self._record()

    def start_host(self, host: int | str, wait: bool = True) -> None:
        """Start the host again on the same ports and board directories; with `wait`,
        until its boards booted and its resources are back at the coordinator."""
        name = _host(host)
        if name in self.hosts:
            raise LabError(f"{name} is running")
        self._spawn_host(name)
        self._wait_ready(name)
        if wait:
            self.wait_resources(self.host_places(name))
        self._record()

    def restart_coordinator(self) -> None:
        """Stop the coordinator (SIGTERM) once places.yaml holds every place, start it
        again on the same port in the same directory; returns when the exporters (which
        exit when it goes and are started again by their hosts) have published every
        place's resources again."""
        self.wait_saved()
        assert self.coordinator_proc is not None
        _stop(self.coordinator_proc, signal.SIGTERM, STOP_S)
        self._start_coordinator()
        self.wait_resources(self.places)
        self._record()

    def wait_saved(self, timeout: float = SAVE_WAIT_S) -> None:
        """Until the coordinator's places.yaml names every place of the lab."""
        path = self.dir / "coordinator" / "places.yaml"
        end = time.monotonic() + timeout
        while True:
            text = path.read_text() if path.is_file() else ""
            if all(f"\n{p}:" in f"\n{text}" for p in self.places):
                return
            if time.monotonic() > end:
                raise LabError(f"{path} does not hold every place after {timeout:.0f} s")
            time.sleep(0.5)

    def wait_resources(self, places: list[str], timeout: float = RESOURCES_S) -> None:
        """Until console, han and power of each place are available at the coordinator."""
        want = {(self.host_of(p), p, cls, name) for p in places
                for name, cls in RESOURCE_NAMES.items()}  # fmt: skip
        end = time.monotonic() + timeout
        while True:
            try:
                missing = want - client.resources(self.coordinator)
            except client.ClientError as exc:  # the coordinator not up yet
                missing = {("?", str(exc), "", "")}
            if not missing:
                return
            if time.monotonic() > end:
                raise LabError(f"resources not available after {timeout:.0f} s: "
                               f"{sorted(missing)[:6]}")  # fmt: skip
            time.sleep(0.5)

    # --- processes
    def _start_coordinator(self) -> None:
        where = self.dir / "coordinator"
        where.mkdir(exist_ok=True)
        with open(where / "coordinator.log", "ab") as out:
            self.coordinator_proc = subprocess.Popen(
                [venv_bin("labgrid-coordinator"), "-l", self.coordinator], cwd=where,
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=functools.partial(die_with_parent, signal.SIGTERM, os.getpid()))  # fmt: skip
        host, port = self.coordinator.rsplit(":", 1)
        end = time.monotonic() + 30
        while True:
            if self.coordinator_proc.poll() is not None:
                raise LabError(f"labgrid-coordinator exited ({self.coordinator_proc.returncode})"
                               f": see {where / 'coordinator.log'}")  # fmt: skip
            with contextlib.suppress(OSError), socket.create_connection((host, int(port)), 1):
                break
            if time.monotonic() > end:
                raise LabError(f"labgrid-coordinator not listening on {self.coordinator}")
            time.sleep(0.1)
        log(f"lab: coordinator on {self.coordinator} (pid {self.coordinator_proc.pid})")

    def _spawn_host(self, name: str) -> None:
        # its own session and process group: killing the group is losing that host
        self.hosts[name] = subprocess.Popen(
            [sys.executable, "-m", "hanota.lab.host", str(self.dir), name],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, start_new_session=True,
            preexec_fn=functools.partial(die_with_parent, signal.SIGTERM, os.getpid()))  # fmt: skip

    def _wait_ready(self, name: str) -> None:
        proc = self.hosts[name]
        assert proc.stdout is not None
        end = time.monotonic() + HOST_READY_S
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise LabError(f"{name} not ready after {HOST_READY_S:.0f} s")
            if select.select([proc.stdout], [], [], min(left, 1.0))[0]:
                line = proc.stdout.readline()
                if line.strip() == b"ready":
                    return
                if not line:
                    proc.wait()
                    raise LabError(f"{name} exited ({proc.returncode}) before it was ready")

    def _stop_host(self, name: str, sig: int) -> None:
        proc = self.hosts.pop(name, None)
        if proc is None:
            return
        _stop(proc, sig, STOP_S)
        if proc.stdout is not None:
            proc.stdout.close()

    def _record(self) -> None:
        """DIR/lab.json with the pids running now (a host writes its exporter's)."""
        for h in self.layout["hosts"]:
            proc = self.hosts.get(h["name"])
            h["pid"] = proc.pid if proc is not None else None
            h["exporter_pid"] = None
            status = Path(h["config"]).parent / "status.json"
            if proc is not None and status.is_file():
                with contextlib.suppress(ValueError, OSError):
                    doc = json.loads(status.read_text())
                    if doc.get("pid") == proc.pid:
                        h["exporter_pid"] = doc.get("exporter_pid")
        config.save(self.dir, self.layout)


def _host(host: int | str) -> str:
    return config.host_name(host) if isinstance(host, int) else host


def _stop(proc: subprocess.Popen, sig: int, wait_s: float) -> None:
    """SIGTERM to `proc` (it stops what it started) or SIGKILL to the whole process group
    it leads; SIGKILL to that group if anything of it is still there after wait_s."""
    with contextlib.suppress(ProcessLookupError):
        if sig == signal.SIGKILL:
            os.killpg(proc.pid, sig)
        else:
            os.kill(proc.pid, sig)
    try:
        proc.wait(wait_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    with contextlib.suppress(ProcessLookupError):  # whatever of the group outlived its leader
        os.killpg(proc.pid, signal.SIGKILL)
