"""Issue 5: a hub restarted mid-transfer resumes it. A real `hanota hub serve` process,
driven through the CLI control commands, is killed with SIGKILL while a provisioned sim
board (real MicroPython + the agent) is between fragments; a new `serve` on the same state
directory and HAN pty rebuilds its state from the event log and the update completes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from hanota import paths
from hanota.board import defs
from hanota.hub import control
from hanota.rig import factory, simboards
from hanota.sim import appimage
from hanota.sim.runner import SimBoard

pytestmark = [
    pytest.mark.sim,
    pytest.mark.skipif(
        not (paths.FIRMWARE / "main.py").is_file(),
        reason="the agent (firmware/main.py) is not built",
    ),
]
HANOTA = str(Path(sys.executable).parent / "hanota")
V1, V2 = 0x01000000, 0x02000000
# a minimum block period: ~3 s per fragment, so the kill lands mid-transfer
SERVE_OPTS = ["--min-block-period", "30", "--confirm-delay", "0.3", "--quiet"]


def hanota(state: Path, *args: str) -> str:
    res = subprocess.run([HANOTA, "hub", *args, "--state", str(state)], capture_output=True,
                         text=True, timeout=30)  # fmt: skip
    assert res.returncode == 0, res.stderr
    return res.stdout


def serve(state: Path, link: str, trust: Path) -> subprocess.Popen:
    proc = subprocess.Popen([HANOTA, "hub", "serve", "--state", str(state), "--link", link,
                             "--trust", str(trust), *SERVE_OPTS], stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:  # the socket file may be the killed hub's: ping it
        assert proc.poll() is None, proc.communicate()[1]
        try:
            control.call(state, "ping", timeout=2)
            return proc
        except (OSError, control.NoHub):
            time.sleep(0.05)
    proc.kill()
    raise AssertionError("hub serve did not answer on its control socket")


def device(state: Path) -> dict:
    return json.loads(hanota(state, "inventory", "--json"))["devices"][0]


def wait(pred, timeout: float, what: str, diag=lambda: ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} {diag()}")


def events(state: Path) -> list[dict]:
    return [json.loads(x) for x in (state / "events.jsonl").read_text().splitlines()]


def test_hub_killed_mid_transfer_resumes_after_restart(tmp_path):
    imgs = factory.Images(tmp_path / "images")
    bdef = defs.load("sim-ppmid")
    app = appimage.build(appimage.collect(paths.FIRMWARE), V2, bdef)  # the agent, ~55 kB
    files = imgs.build(V2, board="sim-ppmid", payload=app, max_size=16000)
    assert len(files) >= 3  # killed with the first held: two or more still to come
    _ident, rec = simboards.fresh(tmp_path / "board", "sim-ppmid", factory_version=V1,
                                  trust=[imgs.pub_path], suppliers=["supplier-a"],
                                  seed="hub-process-restart")  # fmt: skip
    record = tmp_path / "record.json"
    record.write_text(json.dumps(rec))
    eui = rec["eui64"]
    procs: list[subprocess.Popen] = []
    board = SimBoard(tmp_path / "board").start()
    with tempfile.TemporaryDirectory(prefix="hub") as d:  # short: AF_UNIX path limit
        state = Path(d)
        link = f"{board.han_path}={eui}"
        try:
            procs.append(serve(state, link, imgs.pub_path))
            hanota(state, "enrol", str(record))
            # announced (unauthenticated); no signed alert has vouched for a version yet
            wait(lambda: (device(state)["announced"] or {}).get("version") == V1, 30,
                 "the board's announce")  # fmt: skip
            assert device(state)["version"] is None
            out = hanota(state, "submit", "--supplier", "supplier-a", "--device", eui,
                         "--json", *map(str, files))  # fmt: skip
            assert json.loads(out)["fragments"] == len(files)

            # mid-transfer: the first fragment held, the second one under way
            def mid() -> dict | None:
                t = device(state)["in_progress"]
                ok = t and t["state"] == "transferring" and t["fragments_held"]
                return t if ok and t["bytes"] < t["total_bytes"] else None

            wait(mid, 30, "the first fragment held, transfer still running")
            procs[0].send_signal(signal.SIGKILL)
            assert procs[0].wait(5) == -signal.SIGKILL
            # what the hub had when it died is its log (a fragment may have been held
            # between the poll above and the kill)
            log = events(state)
            n_before = len(log)
            held_at_kill = sorted({e["fragment"] for e in log if e["kind"] == "fragment-held"})
            assert held_at_kill and not [e for e in log if e["kind"] == "transfer-complete"]

            procs.append(serve(state, link, imgs.pub_path))
            t = device(state)["in_progress"]
            assert sorted(t["fragments_held"]) == held_at_kill, (t, held_at_kill)

            def diag() -> tuple:
                return events(state)[n_before:], board.events, board.console_text()[-2000:]

            wait(lambda: board.running_version == V2, 40, "the board to run V2", diag)
            wait(lambda: device(state)["version"] == V2, 10, "the inventory to show V2")

            def settled() -> list | None:
                alerts = json.loads(hanota(state, "alerts", "--json"))
                pending = json.loads(hanota(state, "alerts", "--pending", "--json"))
                kinds = [a["kind"] for a in alerts]
                return alerts if not pending and "version-confirmation" in kinds else None

            alerts = wait(settled, 15, "the alerts to settle")
            kinds = sorted(a["kind"] for a in alerts)
            assert kinds == ["activation", "submission-processed", "transfer-success",
                             "version-confirmation"], alerts  # fmt: skip
            conf = next(a for a in alerts if a["kind"] == "version-confirmation")
            assert conf["version"] == V2 and conf["matches"], conf
            # resumed, not restarted: the second hub never held the first fragment again
            after = events(state)[n_before:]
            assert after[0]["kind"] == "hub-start", after[0]
            held = [e for e in after if e["kind"] == "fragment-held"]
            assert held and all(e["fragment"] not in held_at_kill for e in held), held
        finally:
            for p in procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGINT)
                    try:
                        p.wait(10)
                    except subprocess.TimeoutExpired:
                        p.kill()
            board.stop()
    err = procs[-1].stderr.read() if procs and procs[-1].stderr else ""
    assert "Traceback" not in err, err
