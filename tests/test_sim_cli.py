"""`hanota sim` / `hanota app` from the command line: pty lines, mpremote, Ctrl-C, SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hanota.paths import mpremote
from simapps import ECHO, make_tree

pytestmark = pytest.mark.micropython
HANOTA = [sys.executable, "-m", "hanota.cli"]


def hanota(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*HANOTA, *args], capture_output=True, text=True, timeout=60)


def descendants(pid: int) -> set[int]:
    parent: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, todo = set(), [pid]
    while todo:
        p = todo.pop()
        kids = {c for c, pp in parent.items() if pp == p}
        found |= kids
        todo += kids
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture
def sim_dir(tmp_path):
    src = make_tree(tmp_path / "src", ECHO)
    res = hanota("sim", "create", str(tmp_path / "b"), "--board", "sim-ppmid", "--source", str(src))
    assert res.returncode == 0, res.stderr
    return tmp_path / "b"


@pytest.fixture
def running(sim_dir):
    proc = subprocess.Popen([*HANOTA, "sim", "run", str(sim_dir)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    lines = [proc.stdout.readline().strip() for _ in range(2)]
    ptys = dict(line.split(": ", 1) for line in lines)
    deadline = time.monotonic() + 20
    while b"APP confirmed" not in (sim_dir / "console.log").read_bytes():
        assert time.monotonic() < deadline, (sim_dir / "console.log").read_text()
        time.sleep(0.05)
    yield proc, ptys
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_run_prints_han_and_console_ptys(running):
    _proc, ptys = running
    assert set(ptys) == {"han", "console"}
    assert all(p.startswith("/dev/pts/") for p in ptys.values())


def test_mpremote_exec_and_fs_against_running_sim(running, tmp_path):
    _proc, ptys = running
    mp = [mpremote(), "connect", ptys["console"], "resume"]
    res = subprocess.run([*mp, "exec", "print(1+1)"], capture_output=True, text=True, timeout=30)
    assert res.returncode == 0 and res.stdout.strip() == "2", res
    local = tmp_path / "note.txt"
    local.write_text("deployed")
    res = subprocess.run([*mp, "fs", "cp", str(local), ":/data/note.txt"], capture_output=True,
                         text=True, timeout=30)  # fmt: skip
    assert res.returncode == 0, res
    res = subprocess.run([*mp, "fs", "ls", ":/data"], capture_output=True, text=True, timeout=30)
    assert "note.txt" in res.stdout, res
    res = subprocess.run([*mp, "exec", "print(open('/data/note.txt').read())"],
                         capture_output=True, text=True, timeout=30)  # fmt: skip
    assert res.stdout.strip() == "deployed", res


def test_ctrl_c_on_console_gives_the_repl(running, sim_dir):
    _proc, ptys = running
    fd = os.open(ptys["console"], os.O_RDWR | os.O_NOCTTY)
    try:
        os.write(fd, b"\x03")
        time.sleep(0.5)
        os.write(fd, b"print(6*7)\r")
        time.sleep(0.5)
    finally:
        os.close(fd)
    log = (sim_dir / "console.log").read_text()
    assert "KeyboardInterrupt" in log and ">>> " in log and "42" in log, log


def test_sigterm_stops_micropython_and_everything_else(running):
    proc, _ptys = running
    kids = descendants(proc.pid)
    assert kids, "the runner started no MicroPython"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    time.sleep(0.2)
    assert not [k for k in kids if alive(k)]


def test_ctrl_c_stops_sim_run(running):
    proc, _ptys = running
    kids = descendants(proc.pid)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=15) == 0
    time.sleep(0.2)
    assert not [k for k in kids if alive(k)]


def test_info_json(sim_dir):
    res = hanota("sim", "info", str(sim_dir), "--json")
    doc = json.loads(res.stdout)
    assert doc["active_slot"] == "ota_0" and doc["running_version"] == 0x01000000
    assert doc["ops"] == 0 and [e["state_name"] for e in doc["otadata"]] == ["UNDEFINED"] * 2


def test_info_on_corrupt_flash_file_says_so(sim_dir):
    with open(sim_dir / "flash.bin", "r+b") as f:
        f.truncate(4096)
    res = hanota("sim", "info", str(sim_dir), "--json")
    assert res.returncode == 2 and "corrupt flash file" in res.stderr and res.stdout == ""
    res = hanota("sim", "run", str(sim_dir))
    assert res.returncode == 2 and "corrupt flash file" in res.stderr


def test_app_build_too_big_is_refused(tmp_path):
    src = make_tree(tmp_path / "src", ECHO)
    out = tmp_path / "app.bin"
    res = hanota("app", "build", "--board", "sim-ppmid", "--version", "0x01000001",
                 "--source", str(src), "--pad-to", str(4 * 1024 * 1024), "-o", str(out))  # fmt: skip
    assert res.returncode == 2 and "app slots hold 3145728 bytes" in res.stderr
    assert not out.exists()
    res = hanota("app", "build", "--board", "sim-ppmid", "--version", "0x01000001",
                 "--source", str(src), "--pad-to", "200000", "-o", str(out))  # fmt: skip
    assert res.returncode == 0 and out.stat().st_size == 200000


def test_unknown_board_lists_known_ones(tmp_path):
    res = hanota("sim", "create", str(tmp_path / "b"), "--board", "no-such-board")
    assert res.returncode == 2
    assert "unknown board 'no-such-board'" in res.stderr and "sim-ppmid" in res.stderr


def test_app_build_for_esp32_board_names_the_missing_toolchain(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "IDF_PATH"}
    res = subprocess.run([*HANOTA, "app", "build", "--board", "ppmid-esp32s3", "--version", "1",
                          "-o", str(tmp_path / "a.bin")], capture_output=True, text=True, env=env)  # fmt: skip
    assert res.returncode == 2 and "ESP-IDF" in res.stderr and "IDF_PATH" in res.stderr


def test_create_without_agent_main_py_says_what_to_do(tmp_path, monkeypatch):
    from hanota import paths
    from hanota.sim import appimage, create

    monkeypatch.setattr(paths, "FIRMWARE", tmp_path / "firmware")
    with pytest.raises(appimage.AppError, match="main.py does not exist yet.*--source"):
        create.create(tmp_path / "b", "sim-ppmid")
    assert not (tmp_path / "b").exists()
