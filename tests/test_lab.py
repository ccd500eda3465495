"""`hanota lab`: a labgrid coordinator, exporter hosts and sim boards, driven with labgrid's
own client, drivers and config loaders (docs/labgrid.md).

The lab tests share nothing between test functions (pytest-xdist may run them on two
workers): one lab of 2 hosts and 4 boards goes through places, power, console, HAN, a
lost host and a coordinator restart in order; `hanota lab up` runs as a command on its
own small lab. The endpoint, power switch and exporter config are tested alone first.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hanota.lab import client, config
from hanota.lab.bridge import Endpoint
from hanota.lab.power import PowerSwitch
from hanota.lab.up import Lab
from hanota.paths import BOARDS, venv_bin
from otaclient import link

# --- the parts alone


def _connect(url: str, timeout: float = 5.0) -> socket.socket:
    host, port = url.removeprefix("socket://").rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout)
    s.settimeout(timeout)
    return s


def _recv_until(s: socket.socket, want: bytes, timeout: float = 10.0) -> bytes:
    got, end = b"", time.monotonic() + timeout
    while want not in got and time.monotonic() < end:
        try:
            chunk = s.recv(4096)
        except TimeoutError:
            continue
        if not chunk:
            break
        got += chunk
    return got


def _read_fd(fd: int, n: int, timeout: float = 5.0) -> bytes:
    got, end = b"", time.monotonic() + timeout
    while len(got) < n and time.monotonic() < end:
        try:
            got += os.read(fd, 4096)
        except BlockingIOError:
            time.sleep(0.01)
    return got


def test_endpoint_carries_bytes_keeps_its_client_across_power_and_replaces_it():
    import tty

    ep = Endpoint("t", 0)
    m1, s1 = os.openpty()
    tty.setraw(s1)
    os.set_blocking(m1, False)
    try:
        ep.attach(os.ttyname(s1))
        c = _connect(ep.url)
        every = bytes(range(256))  # Ctrl-C, Ctrl-A, NUL ...: passed unchanged
        c.sendall(every)
        assert _read_fd(m1, 256) == every
        os.write(m1, b"\x03\x01raw REPL; CTRL-B to exit\r\n>")
        assert _recv_until(c, b">").endswith(b"\x03\x01raw REPL; CTRL-B to exit\r\n>")

        ep.detach()  # the board is off: the client stays, its bytes are dropped
        c.sendall(b"lost")
        m2, s2 = os.openpty()
        tty.setraw(s2)
        os.set_blocking(m2, False)
        ep.attach(os.ttyname(s2))  # powered again, on a new pty
        c.sendall(b"kept")
        assert _read_fd(m2, 4) == b"kept"
        assert _read_fd(m1, 4, timeout=0.3) == b""
        os.write(m2, b"back")
        assert _recv_until(c, b"back") == b"back"

        c2 = _connect(ep.url)  # a second client replaces the first
        assert _recv_until(c, b"never", timeout=3) == b""  # the first one is closed
        c2.sendall(b"two")
        assert _read_fd(m2, 3) == b"two"
        c.close()
        c2.close()
        os.close(m2)
        os.close(s2)
    finally:
        ep.close()
        os.close(m1)
        os.close(s1)


class _Outlet:
    def __init__(self) -> None:
        self.powered = False
        self.calls: list[bool] = []

    def power(self, on: bool) -> None:
        self.calls.append(on)
        self.powered = on


def test_power_switch_answers_labgrids_simplerest_driver():
    import requests
    from labgrid.driver.power import simplerest

    outlets = {0: _Outlet(), 3: _Outlet()}
    switch = PowerSwitch(0, outlets)
    try:
        url = switch.template
        assert url == f"http://127.0.0.1:{switch.port}/power/{{index}}/{{value}}"
        simplerest.power_set(url, None, 3, True)
        assert simplerest.power_get(url, None, 3) is True
        assert simplerest.power_get(url, None, 0) is False
        simplerest.power_set(url, None, 3, False)
        assert simplerest.power_get(url, None, 3) is False
        assert outlets[3].calls == [True, False] and outlets[0].calls == []
        with pytest.raises(requests.HTTPError):
            simplerest.power_set(url, None, 7, True)  # no such outlet
    finally:
        switch.close()


def test_exporter_config_is_what_labgrids_exporter_loads(tmp_path):
    from labgrid.remote.config import ResourceConfig

    layout = config.plan(tmp_path, boards=3, hosts=2, board="sim-ppmid",
                         factory_version=0x01000000)  # fmt: skip
    path = tmp_path / "exporter.yaml"
    path.write_text(config.exporter_yaml(layout, "host1"))
    data = ResourceConfig(str(path), {"hostname": "127.0.0.1", "name": "host1"}).data
    assert list(data) == ["sim-ppmid-1", "sim-ppmid-3"]
    for place, group in data.items():
        p = layout["places"][place]
        assert group["console"] == {"cls": "NetworkSerialPort", "host": "127.0.0.1",
                                    "port": p["console_port"], "protocol": "raw",
                                    "speed": 115200}  # fmt: skip
        assert group["han"]["port"] == p["han_port"] and group["han"]["protocol"] == "raw"
        assert group["power"] == {"cls": "NetworkPowerPort", "model": "simplerest",
                                  "host": layout["hosts"][0]["power"],
                                  "index": p["index"]}  # fmt: skip
    assert [layout["places"][p]["index"] for p in data] == [0, 1]
    ports = config.ports_of(layout)
    assert len(set(ports)) == len(ports) == 1 + 2 + 2 * 3


def test_real_board_exporter_template_loads(tmp_path):
    from labgrid.remote.config import ResourceConfig

    data = ResourceConfig(str(BOARDS / "labgrid" / "exporter-real.yaml"), {}).data
    group = data["ppmid-1"]
    assert group["console"]["cls"] == group["han"]["cls"] == "USBSerialPort"
    assert "ID_SERIAL_SHORT" in group["han"]["match"]
    assert group["power"]["cls"] == "NetworkPowerPort" and group["power"]["model"] == "gude"


# --- a running lab


def _board_pids(board_dir: str) -> list[int]:
    """MicroPython processes running the board whose directory is board_dir."""
    flash = f"{board_dir}/flash.bin".encode()
    pids = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                cmd = Path(entry.path, "cmdline").read_bytes()
            except OSError:
                continue
            if flash in cmd.split(b"\0"):
                pids.append(int(entry.name))
    return pids


def _processes_with(text: str) -> list[str]:
    out = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmd = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if text.encode() in cmd:
                out.append(f"{entry.name}: {cmd.decode(errors='replace')[:200]}")
    return out


def _closed(s: socket.socket, timeout: float = 5.0) -> bool:
    """True when the peer closes or resets the connection within timeout (bytes still
    in flight before that are read and dropped)."""
    s.settimeout(0.2)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if s.recv(4096) == b"":
                return True
        except TimeoutError:
            continue
        except ConnectionResetError:
            return True
    return False


def _wait(what: str, cond, timeout: float = 20.0):
    end = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > end:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.2)


def _lgc(lab: Lab, *args: str, place: str | None = None) -> str:
    return client.run(lab.coordinator, *args, place=place).stdout


def _mpremote(url: str, code: str) -> str:
    res = subprocess.run([venv_bin("mpremote"), "connect", url, "resume", "exec", code],
                         capture_output=True, text=True, timeout=30)  # fmt: skip
    assert res.returncode == 0, res.stderr[-1500:]
    return res.stdout


_ENV_CHECK = r"""
import os, sys, labgrid
env = labgrid.Environment(sys.argv[1])
target = env.get_target("main")
power = target.get_driver("NetworkPowerDriver", name="power")
han = target.get_driver("SerialDriver", name="han")
console = target.get_driver("SerialDriver", name="console")
power.off()
assert not power.get(), "off"
print("off", flush=True)
input()  # the test checks the board is down
power.on()
console.expect("no CH link key", timeout=20)  # the agent runs (an unprovisioned board)
console.write(b"\x03\x03")
console.expect(">>> ", timeout=20)
console.sendline("print(6*7)")
console.expect("42", timeout=10)
print("console", flush=True)
print("han", len(han.read(size=1, timeout=10.0)), flush=True)
target.cleanup()
"""


def test_lab_places_power_console_han_lost_host_and_coordinator_restart(tmp_path):
    t0 = time.monotonic()
    with Lab(tmp_path / "lab", boards=4, exporters=2) as lab:
        started = time.monotonic() - t0
        places = ["sim-ppmid-1", "sim-ppmid-2", "sim-ppmid-3", "sim-ppmid-4"]
        assert lab.places == places
        assert [lab.host_of(p) for p in places] == ["host1", "host2", "host1", "host2"]
        doc = config.load(lab.dir)
        assert doc["coordinator"] == lab.coordinator
        assert all(isinstance(h["pid"], int) and isinstance(h["exporter_pid"], int)
                   for h in doc["hosts"])  # fmt: skip

        # places at the coordinator, each matching its board's three resources
        assert client.places(lab.coordinator) == places
        for p in places:
            shown = _lgc(lab, "show", place=p)
            host = lab.host_of(p)
            for name, cls in (("console", "NetworkSerialPort"), ("han", "NetworkSerialPort"),
                              ("power", "NetworkPowerPort")):  # fmt: skip
                assert f"Matching resource '{name}' ({host}/{p}/{cls}/{name})" in shown, shown

        # power through labgrid-client: that board alone goes down and comes back
        dirs = {p: doc["places"][p]["board_dir"] for p in places}
        before = {p: _board_pids(dirs[p]) for p in places}
        assert all(len(v) == 1 for v in before.values()), before
        _lgc(lab, "acquire", place="sim-ppmid-2")
        _lgc(lab, "power", "off", place="sim-ppmid-2")
        assert _board_pids(dirs["sim-ppmid-2"]) == []
        assert "is off" in _lgc(lab, "power", "get", place="sim-ppmid-2")
        assert {p: _board_pids(dirs[p]) for p in places if p != "sim-ppmid-2"} == {
            p: before[p] for p in places if p != "sim-ppmid-2"}  # fmt: skip
        _lgc(lab, "power", "on", place="sim-ppmid-2")
        again = _board_pids(dirs["sim-ppmid-2"])
        assert len(again) == 1 and again != before["sim-ppmid-2"]
        _lgc(lab, "release", place="sim-ppmid-2")

        # mpremote over the console endpoint
        console1 = doc["places"]["sim-ppmid-1"]["console"]
        assert _mpremote(console1, "print(1+1)").strip() == "2"
        _mpremote(console1, "open('lab-mark','w').write('flash kept')")

        # the HAN endpoint: a raw client kept across a power cycle sees the agent's frames
        han3 = _connect(doc["places"]["sim-ppmid-3"]["han"])
        _lgc(lab, "acquire", place="sim-ppmid-3")
        _lgc(lab, "power", "off", place="sim-ppmid-3")
        han3.sendall(b"\x7e to a board that is off \x7e")  # dropped; the client stays
        _lgc(lab, "power", "on", place="sim-ppmid-3")
        dec, frames, end = link.Decoder(), [], time.monotonic() + 15
        while not frames and time.monotonic() < end:
            try:
                data = han3.recv(4096)
            except TimeoutError:
                continue
            assert data, "the HAN endpoint closed its client at a power cycle"
            dec.feed(data)
            while (f := dec.next()) is not None:
                frames.append(f)
        assert frames and frames[0][1] == 0x0000, frames  # to the Comms Hub
        _lgc(lab, "release", place="sim-ppmid-3")
        han3.close()

        # labgrid's Environment with boards/labgrid/env-sim.yaml, in a process of its own
        _lgc(lab, "acquire", place="sim-ppmid-4")
        env = dict(os.environ, LG_COORDINATOR=lab.coordinator, LG_PLACE="sim-ppmid-4")
        proc = subprocess.Popen([sys.executable, "-c", _ENV_CHECK,
                                 str(BOARDS / "labgrid" / "env-sim.yaml")], env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
        try:
            assert proc.stdout.readline().strip() == "off"
            assert _board_pids(dirs["sim-ppmid-4"]) == []
            out, _ = proc.communicate("\n", timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0 and out.split() == ["console", "han", "1"], out
        assert len(_board_pids(dirs["sim-ppmid-4"])) == 1
        _lgc(lab, "release", place="sim-ppmid-4")

        # host1 lost: its connections reset, its resources leave the coordinator
        c1 = _connect(doc["places"]["sim-ppmid-1"]["console"])
        c2 = _connect(doc["places"]["sim-ppmid-2"]["console"])
        lab.kill_host(1)
        assert _closed(c1), "host1's console client still connected after host1 was lost"
        assert _board_pids(dirs["sim-ppmid-1"]) == [] == _board_pids(dirs["sim-ppmid-3"])
        _wait(
            "host1's resources gone",
            lambda: not any(r[0] == "host1" for r in client.resources(lab.coordinator)),
        )
        left = client.resources(lab.coordinator)
        assert {(r[1], r[3]) for r in left} == {(p, n) for p in ("sim-ppmid-2", "sim-ppmid-4")
                                                for n in ("console", "han", "power")}  # fmt: skip
        with pytest.raises(ConnectionRefusedError):
            _connect(doc["places"]["sim-ppmid-1"]["console"])
        assert not _closed(c2, timeout=1.0)  # host2's client is still connected
        c2.close()
        c1.close()

        # host1 again: same ports, same board directories (its filesystem kept)
        lab.start_host(1)
        assert config.load(lab.dir)["places"] == doc["places"]
        assert _mpremote(console1, "print(open('lab-mark').read())").strip() == "flash kept"
        assert len(_board_pids(dirs["sim-ppmid-3"])) == 1

        # coordinator restart: labgrid keeps its places (places.yaml) and drops
        # acquisitions when it loads them
        _lgc(lab, "acquire", place="sim-ppmid-1")
        assert "sim-ppmid-1" in _lgc(lab, "places", "--acquired")
        lab.restart_coordinator()
        assert client.places(lab.coordinator) == places
        assert "host1/sim-ppmid-1/*" in _lgc(lab, "show", place="sim-ppmid-1")
        assert _lgc(lab, "places", "--acquired").strip() == ""
        _lgc(lab, "acquire", place="sim-ppmid-1")
        assert "is on" in _lgc(lab, "power", "get", place="sim-ppmid-1")
        _lgc(lab, "release", place="sim-ppmid-1")
    assert _processes_with(str(lab.dir)) == [] == _processes_with(lab.coordinator)
    print(f"lab started in {started:.1f} s, whole test {time.monotonic() - t0:.1f} s")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_hanota_lab_up_prints_its_lines_and_stops_everything(tmp_path, sig):
    where = tmp_path / "lab"
    proc = subprocess.Popen([venv_bin("hanota"), "lab", "up", "--boards", "2", "--exporters",
                             "1", "--dir", str(where)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        lines = [proc.stdout.readline().strip() for _ in range(3)]
        assert lines[0].startswith("coordinator: 127.0.0.1:"), lines
        assert lines[1:] == ["place: sim-ppmid-1", "place: sim-ppmid-2"]
        coordinator = lines[0].split()[1]
        assert client.places(coordinator) == ["sim-ppmid-1", "sim-ppmid-2"]
        assert len(_processes_with(str(where))) >= 5  # coordinator, host, exporter, 2 boards
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + sig, err[-2000:]
    assert err.rstrip().endswith(f"lab: stopped by {signal.Signals(sig).name}"), err[-2000:]
    assert _processes_with(str(where)) == [] == _processes_with(coordinator)
