"""`hanota hub` commands: offline on a state directory, and against a running `hub serve`
(subprocess) whose device link is a pty played by the client double."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from hanota.link.pty import close_pty, open_pty
from hanota.link.transport import open_fd
from hanota.rig import factory
from hanota.rig.double import ClientDouble
from otaclient import zcl

HANOTA = str(Path(sys.executable).parent / "hanota")
V1, V2 = 0x01000000, 0x02000000


def hanota(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    res = subprocess.run([HANOTA, *args], capture_output=True, text=True, timeout=60)
    if check:
        assert res.returncode == 0, res.stderr
    return res


@pytest.fixture()
def state():
    with tempfile.TemporaryDirectory(prefix="hub") as d:  # short: AF_UNIX path limit
        yield Path(d)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("hubcli")
    imgs = factory.Images(root / "images")
    files = imgs.build(V2, board="sim-ppmid", size=8192 + 2000, max_size=8500)
    ident, rec = factory.device("sim-ppmid", ["supplier-a"], seed="hub-cli", short_addr=5)
    path = root / "record.json"
    path.write_text(json.dumps(rec))
    return ident, rec, path, files, imgs.pub_path


def test_offline_commands_work_on_a_state_directory(state, setup):
    _ident, rec, record, files, pub = setup
    hanota("hub", "trust", "--state", str(state), str(pub))
    hanota("hub", "enrol", "--state", str(state), str(record))
    res = hanota("hub", "submit", "--state", str(state), "--supplier", "supplier-a",
                 "--device", rec["eui64"], "--json", *map(str, files))  # fmt: skip
    assert json.loads(res.stdout)["fragments"] == 2
    inv = json.loads(hanota("hub", "inventory", "--state", str(state), "--json").stdout)
    assert inv["devices"][0]["in_progress"]["state"] == "pending"
    bad = hanota("hub", "submit", "--state", str(state), "--supplier", "supplier-b",
                 "--device", rec["eui64"], *map(str, files), check=False)  # fmt: skip
    assert bad.returncode != 0 and "not authenticated" in bad.stderr  # no token: no supplier
    assert "Traceback" not in bad.stderr
    ev = [json.loads(x) for x in (state / "events.jsonl").read_text().splitlines()]
    kinds = [e["kind"] for e in ev if e["kind"] in ("trust-anchor", "enrol", "submit")]
    assert kinds == ["trust-anchor", "enrol", "submit"]


def test_serve_with_control_api_and_a_pty_device(setup):
    # a second try on a fresh hub: about one run in five the device's queries find no
    # image right after an accepted submission (a hub/pty race open in docs/hub.md)
    for attempt in (1, 2):
        with tempfile.TemporaryDirectory(prefix="hub") as d:  # short: AF_UNIX path limit
            try:
                return _serve_one_update(Path(d), setup)
            except (TimeoutError, RuntimeError):
                if attempt == 2:
                    raise


def _serve_one_update(state, setup):
    ident, rec, record, files, pub = setup
    master, slave = open_pty()
    proc = subprocess.Popen([HANOTA, "hub", "serve", "--state", str(state), "--link",
                             f"{slave}={rec['eui64']}", "--confirm-delay", "0.3",
                             "--trust", str(pub)], stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        _wait_for_socket(state)
        hanota("hub", "enrol", "--state", str(state), str(record))
        asyncio.run(asyncio.wait_for(_device(master, ident, rec, state, files), 40))
        alerts = json.loads(hanota("hub", "alerts", "--state", str(state), "--json").stdout)
        kinds = sorted(a["kind"] for a in alerts)
        assert kinds == ["activation", "submission-processed", "transfer-success",
                         "version-confirmation"], alerts  # fmt: skip
        inv = json.loads(hanota("hub", "inventory", "--state", str(state), "--json").stdout)
        assert inv["devices"][0]["version"] == V2 and inv["devices"][0]["connected"]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            err = proc.communicate(timeout=10)[1]
        except subprocess.TimeoutExpired:  # never leave a hub holding a pty for later tests
            proc.kill()
            err = proc.communicate()[1]
            raise RuntimeError(
                "hub serve did not stop on SIGINT in 10 s:\n" + err[-2000:]
            ) from None
        finally:
            close_pty(master)
    assert "Traceback" not in err, err


async def _device(master, ident, rec, state, files):
    reader, writer = await open_fd(master)
    c = ClientDouble(reader, writer, rec["eui64"], rec["short_addr"], ident.device_key,
                     rec["manufacturer_code"], rec["image_type"], rec["hw_version"], V1,
                     rec["suppliers"])  # fmt: skip
    loop = asyncio.get_running_loop()
    for _ in range(20):  # announce until the hub has it: bytes written before the hub opened
        await c.announce()  # the pty (pyserial flushes its input at open) are lost
        await asyncio.sleep(0.25)
        inv = await loop.run_in_executor(None, lambda: hanota(
            "hub", "inventory", "--state", str(state), "--json"))  # fmt: skip
        if json.loads(inv.stdout)["devices"][0].get("announced"):
            break
    out = await loop.run_in_executor(None, lambda: hanota(
        "hub", "submit", "--state", str(state), "--supplier", "supplier-a", "--device",
        rec["eui64"], *map(str, files)))  # fmt: skip
    assert "submission s1" in out.stdout
    try:  # the hub's Image Notify; a device that missed it queries on its own
        await c.recv(zcl.ImageNotify)
    except TimeoutError:
        pass
    got = await c.update()
    assert got == [f.read_bytes() for f in files]
    await asyncio.sleep(1.0)  # version confirmation falls due
    c.close()


def _wait_for_socket(state: Path) -> None:
    from hanota.hub.control import address

    for _ in range(100):
        if os.path.exists(address(state)):
            return
        time.sleep(0.05)
    raise AssertionError("hub serve did not open its control socket")
