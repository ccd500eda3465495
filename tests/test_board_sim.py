"""`make flash BOARD=sim-ppmid` for real: create a sim board, start it, deploy and provision
with real mpremote over its console pty, stop it; then start it again and find the store
files with `mpremote fs ls :/data` (they live in the flash file's LittleFS partition)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hanota.paths import FIRMWARE, mpremote

HANOTA = str(Path(sys.executable).parent / "hanota")
IDLE_MAIN = """from ports import make_port
import time
port = make_port()
port.log("board test agent up")
while True:
    time.sleep_ms(50)
"""

pytestmark = pytest.mark.skipif(
    pytest.importorskip("hanota.sim.runner", reason="sim runner not in this checkout") is None,
    reason="sim runner missing",
)


def hanota(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([HANOTA, *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory) -> Path:
    """A sim-ppmid whose app is the firmware tree with an idle main.py (builds the port,
    which mounts /data, and waits), so the test does not depend on the agent's behaviour."""
    base = tmp_path_factory.mktemp("simboard")
    app = base / "app"
    for pkg in ("otaclient", "ports"):
        shutil.copytree(FIRMWARE / pkg, app / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    (app / "main.py").write_text(IDLE_MAIN)
    res = hanota("sim", "create", str(base / "sim"), "--board", "sim-ppmid", "--source", str(app))
    assert res.returncode == 0, res.stderr
    return base / "sim"


def mp(pty: str, *args: str) -> str:
    res = subprocess.run([mpremote(), "connect", pty, "resume", *args],
                         capture_output=True, text=True, timeout=30)  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


def test_flash_sim_board_deploys_and_provisions_over_mpremote(sim_dir: Path, tmp_path: Path):
    record = tmp_path / "rec.json"
    res = hanota("board", "flash", "--board", "sim-ppmid", "--sim-dir", str(sim_dir),
                 "--record", str(record), "--supplier", "supplier-b", "--json")  # fmt: skip
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert "mpremote connect /dev/pts/" in res.stderr and " resume " in res.stderr
    assert " fs cp " in res.stderr  # the store files, after keys.json is removed
    assert summary["deploy_s"] >= 0 and summary["record"] == str(record)
    rec = json.loads(record.read_text())
    assert rec["suppliers"] == ["supplier-b"] and len(rec["public_key"]) == 128

    from hanota.sim.runner import SimBoard

    with SimBoard(sim_dir) as sb:  # a new boot: only what is in flash.bin survives
        sb.wait_for("boot")
        time.sleep(0.5)  # past MicroPython's start-up before mpremote's Ctrl-C
        listing = mp(sb.console_path, "fs", "ls", ":/data")
        assert "identity.json" in listing and "trust.json" in listing, listing
        ident = json.loads(mp(sb.console_path, "fs", "cat", ":/data/identity.json"))
    assert ident["eui64"] == rec["eui64"] and ident["board"] == "sim-ppmid"
    assert ident["suppliers"] == ["supplier-b"]


def test_reflash_of_a_sim_keeps_its_identity(sim_dir: Path, tmp_path: Path):
    a = json.loads(hanota("board", "flash", "--board", "sim-ppmid", "--sim-dir", str(sim_dir),
                          "--record", str(tmp_path / "a.json"), "--json").stdout)  # fmt: skip
    b = json.loads(hanota("board", "flash", "--board", "sim-ppmid", "--sim-dir", str(sim_dir),
                          "--record", str(tmp_path / "b.json"), "--json").stdout)  # fmt: skip
    assert a["eui64"] == b["eui64"] and a["public_key"] == b["public_key"]


def test_deploy_only_to_a_sim_board(sim_dir: Path):
    res = hanota("board", "deploy", "--board", "sim-ppmid", "--sim-dir", str(sim_dir), "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["target"] == str(sim_dir)
    assert "identity.json" not in res.stderr  # deploy does not touch provisioning


def test_deploy_to_a_sim_copies_only_what_its_slot_lacks(sim_dir: Path):
    # modules identical to the running slot's would shadow it and load into the heap
    # instead of running in place; a stale one an earlier deploy left is removed
    stale = sim_dir / "fs" / "otaclient" / "stale.mpy"
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_bytes(b"M")
    res = hanota("board", "deploy", "--board", "sim-ppmid", "--sim-dir", str(sim_dir), "--json")
    assert res.returncode == 0, res.stderr
    assert "already in the running slot" in res.stderr
    on_fs = sorted(p.relative_to(sim_dir / "fs").as_posix() for p in (sim_dir / "fs").rglob("*"))
    assert on_fs == ["board.json", "main.py"], on_fs  # main.py: the slot's is the idle one


def test_provision_to_a_sim_directory(sim_dir: Path, tmp_path: Path):
    res = hanota("board", "provision", "--board", "sim-ppmid", "--sim", str(sim_dir),
                 "--eui64", "0011223344556677", "--record", str(tmp_path / "r.json"), "--json")  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["eui64"] == "0011223344556677"


def test_deploy_to_a_missing_sim_board_says_what_to_do(tmp_path: Path):
    res = hanota("board", "deploy", "--board", "sim-ppmid", "--sim-dir", str(tmp_path / "none"))
    assert res.returncode == 2 and "make flash BOARD=sim-ppmid" in res.stderr
