"""Console and esptool sharing one USB serial port, without hardware: a `hanota board
monitor` holds a pty as the board's console; `board flash` (esptool, then mpremote
deploy/provision/reset) and the rig's console reader must find the port released by the
monitor for their whole run, and the monitor must hold it again afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hanota.board import actions, defs, deploy, flash
from hanota.board.options import FlashOptions, IdentityOptions
from hanota.rig.factory import Images

HANOTA = str(Path(sys.executable).parent / "hanota")


def holders(port: str, pid: int) -> bool:
    """True if process `pid` has `port` open (from /proc/PID/fd)."""
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        try:
            if os.readlink(fd) == port:
                return True
        except OSError:
            continue
    return False


def wait_until(pred, timeout=10.0, what="it"):
    end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture()
def monitored(tmp_path):
    """A pty standing in for /dev/ttyUSB0 with `hanota board monitor` on it."""
    master, slave = os.openpty()
    port = os.ttyname(slave)
    err = tmp_path / "monitor.err"
    with open(tmp_path / "monitor.out", "wb") as fo, open(err, "wb") as fe:
        proc = subprocess.Popen([HANOTA, "board", "monitor", "--port", port],
                                stdin=subprocess.PIPE, stdout=fo, stderr=fe)  # fmt: skip
    try:
        wait_until(lambda: b"Ctrl-] quits" in err.read_bytes(), what="the monitor")
        wait_until(lambda: holders(port, proc.pid), what="the monitor to open the port")
        yield port, master, proc, err
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        os.close(master)
        os.close(slave)


def test_flash_closes_the_console_before_esptool_and_reopens_it_after(
    monitored, tmp_path, monkeypatch
):
    port, _master, mon, err = monitored
    log = tmp_path / "steps.jsonl"
    # esptool stand-in: records whether the monitor still held the port when it ran
    fake = tmp_path / "esptool.py"
    fake.write_text(
        "import json, os, sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from test_board_port_sharing import holders\n"
        f"open({str(log)!r}, 'a').write(json.dumps({{'step': 'esptool', 'argv': sys.argv[1:],"
        f" 'monitor_holds': holders({port!r}, {mon.pid})}}) + '\\n')\n"
    )
    board = defs.load("ihd-esp32")
    real_cmd = flash.esptool_cmd(board, port, tmp_path / "fw.bin", 460800)
    monkeypatch.setattr(flash, "check_firmware", lambda b, p: {"chip": b["chip"]})
    monkeypatch.setattr(flash, "esptool_cmd",
                        lambda b, p, fw, baud: [sys.executable, str(fake), *real_cmd[1:]])  # fmt: skip
    monkeypatch.setattr(actions, "BOOT_WAIT_S", 0.0)
    # espefuse stand-in: logs its turn, then reads a virtual chip's eFuses with real espefuse
    fuse = tmp_path / "espefuse.py"
    fuse.write_text(
        "import json, os, sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from test_board_port_sharing import holders\n"
        f"open({str(log)!r}, 'a').write(json.dumps({{'step': 'espefuse', 'argv': sys.argv[1:],"
        f" 'monitor_holds': holders({port!r}, {mon.pid})}}) + '\\n')\n"
        "i = sys.argv.index('--port')\n"
        f"argv = [{flash.venv_bin('espefuse')!r}, '--virt', *sys.argv[1:i], *sys.argv[i + 2:]]\n"
        "os.execv(argv[0], argv)\n"
    )
    real_fuse = flash.espefuse_cmd(board, port)
    monkeypatch.setattr(
        flash, "espefuse_cmd", lambda b, p: [sys.executable, str(fuse), *real_fuse[1:]]
    )

    def fake_mpremote(cmds, what, **kw):  # deploy, provision, reset: mpremote's turn
        for c in cmds:
            with open(log, "a") as f:
                f.write(json.dumps({"step": what, "argv": c[1:],
                                    "monitor_holds": holders(port, mon.pid)}) + "\n")  # fmt: skip
        return 0.01

    monkeypatch.setattr(deploy, "run", fake_mpremote)
    images = Images(tmp_path / "keys")
    ident = IdentityOptions(seed="sharing", trust=(images.pub_path,),
                            record=tmp_path / "rec.json", heap_report=True)  # fmt: skip
    opts = FlashOptions(ident, port=port, firmware=tmp_path / "fw.bin")
    res = actions.flash_real(board, opts)
    assert res["record"] == str(tmp_path / "rec.json")
    steps = [json.loads(line) for line in log.read_text().splitlines()]
    assert [s["step"] for s in steps] == ["espefuse", "esptool", "deploy", "provision", "reset"]
    assert not any(s["monitor_holds"] for s in steps), steps  # the port was free throughout
    assert steps[0]["argv"][:4] == ["--chip", "esp32", "--port", port]
    assert "summary" in steps[0]["argv"] and "FLASH_CRYPT_CNT" in steps[0]["argv"]
    assert steps[1]["argv"][:4] == ["--chip", "esp32", "--port", port]
    assert "write-flash" in steps[1]["argv"] and "0x1000" in steps[1]["argv"]
    assert steps[3]["argv"][:3] == ["connect", port, "exec"]  # real board: no 'resume'
    assert any(a.endswith("agent_config.json") for a in steps[3]["argv"])  # --heap-report
    text = err.read_text()
    assert "[monitor paused" in text
    wait_until(lambda: "[monitor resumed]" in err.read_text(), what="the monitor to resume")
    wait_until(lambda: holders(port, mon.pid), what="the monitor to reopen the port")


def test_rig_console_reader_takes_the_port_from_the_monitor_and_gives_it_back(monitored):
    from hanota.rig.console import ConsoleCapture

    port, master, mon, err = monitored
    with ConsoleCapture(port) as cap:
        assert cap.is_open and not holders(port, mon.pid)  # one owner at a time
        os.write(master, b"heap: idle=70000\r\nheap: peak=75000 idle=70000\r\n")
        wait_until(lambda: b"peak=75000" in cap.text(), what="the console text")
    wait_until(lambda: "[monitor resumed]" in err.read_text(), what="the monitor to resume")
    wait_until(lambda: holders(port, mon.pid), what="the monitor to reopen the port")
    from hanota.rig import heap

    assert heap.parse(cap.text()).peak_heap == 5000
