"""The real-hardware path without hardware: the hub on a real pyserial port (a pty pair
standing in for a USB-UART adapter), `hanota rig update --hub-port/--port/--record` on a
sim board's ptys as if they were a real board's HAN UART and USB console, and the dry run
of that path. With a board: `pytest -m hardware --board-port ... --hub-port ...`."""

from __future__ import annotations

import asyncio
import json
import os
import termios
import tty

import pytest
from hanota import cli, paths
from hanota.hub import Hub, HubConfig
from hanota.hub.server import serve_path
from hanota.link.transport import open_fd, open_serial_port
from hanota.rig import factory, heap, simboards
from hanota.rig.double import ClientDouble
from test_rig_sim import V1, V2, app_image, rig_update


@pytest.fixture(scope="module")
def dev():
    return factory.device("sim-ppmid", ["supplier-a"], seed="hw-path", short_addr=21)


def test_hub_serves_a_pyserial_port_8n1_at_the_profile_baud(tmp_path, dev, images):
    files = images.build(V2, board="sim-ppmid", size=8192 + 4000, max_size=8500)
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    ident, rec = dev
    hub = Hub(HubConfig(confirm_delay_s=0.2), state_dir=tmp_path / "hub")
    hub.add_anchor(images.pub_path)
    hub.enrol(rec)
    hub.submit("supplier-a", [rec["eui64"]], files)

    async def go():
        served = asyncio.create_task(serve_path(hub, path, rec["eui64"], baud=921600))
        alerts = asyncio.create_task(hub.alert_loop())
        while rec["eui64"] not in hub.links:  # the port is open (pyserial, exclusive)
            await asyncio.sleep(0.02)
        attrs = termios.tcgetattr(slave)  # what pyserial set on the port
        assert attrs[4] == attrs[5] == termios.B921600
        assert attrs[2] & termios.CSIZE == termios.CS8
        assert not attrs[2] & (termios.PARENB | termios.CSTOPB | termios.CRTSCTS)
        with pytest.raises(ConnectionError, match="cannot open serial port"):
            open_serial_port(path)  # exclusive: a second owner (esptool, a monitor) is refused
        r, w = await open_fd(master)
        client = ClientDouble(r, w, rec["eui64"], rec["short_addr"], ident.device_key,
                              rec["manufacturer_code"], rec["image_type"], rec["hw_version"],
                              V1, rec["suppliers"])  # fmt: skip
        got = await client.update()
        assert got == [f.read_bytes() for f in files]
        for _ in range(200):
            if hub.settled():
                break
            await asyncio.sleep(0.05)
        client.close()
        for t in (served, alerts):
            t.cancel()
        await asyncio.gather(served, alerts, return_exceptions=True)

    try:
        asyncio.run(asyncio.wait_for(go(), 60))
    finally:
        hub.close()
        os.close(master)
        os.close(slave)
    kinds = [a["kind"] for a in hub.alerts()]
    assert "transfer-success" in kinds and "activation" in kinds, kinds
    assert hub.state.devices[rec["eui64"]].version == V2


def test_rig_dry_run_of_the_real_board_path(capsys, tmp_path):
    rec = tmp_path / "rec.json"
    rc = cli.main(["rig", "update", "--dry-run", "--json", "--hub-port", "/dev/ttyUSB1",
                   "--port", "/dev/ttyUSB0", "--record", str(rec), "--link", "uart-115200",
                   "--image", "a.zigbee", "--trust", "k.pem"])  # fmt: skip
    assert rc == 0
    steps = json.loads(capsys.readouterr().out)["steps"]
    text = "\n".join(steps)
    assert "serves the HAN UART /dev/ttyUSB1 with pyserial at 115200 baud 8N1" in text
    assert "console: /dev/ttyUSB0 read with pyserial" in text and str(rec) in text


@pytest.mark.parametrize(("args", "needle"), [
    (["--port", "/dev/ttyUSB0"], "give its HAN UART with --hub-port"),
    (["--hub-port", "/dev/ttyUSB1"], "--hub-port needs --record"),
])  # fmt: skip
def test_rig_real_board_options_are_checked(capsys, args, needle):
    rc = cli.main(["rig", "update", "--image", "a", "--trust", "k", *args])
    assert rc == 2 and needle in capsys.readouterr().err


@pytest.mark.sim
@pytest.mark.skipif(not (paths.FIRMWARE / "main.py").is_file(), reason="no agent")
def test_rig_update_over_hub_port_and_console_port_of_a_board(capsys, images, tmp_path):
    """A sim board's HAN and console ptys used exactly as a real board's /dev/ttyUSB*."""
    from hanota.sim.runner import SimBoard

    files = app_image(images, "sim-ppmid", V2, 160000, max_size=100000)
    _ident, record = simboards.fresh(
        tmp_path / "board", "sim-ppmid", factory_version=V1, trust=[images.pub_path],
        suppliers=["supplier-a"], seed="hw-path-rig", agent_config=heap.with_report(None),
    )  # fmt: skip
    rec = tmp_path / "rec.json"
    rec.write_text(json.dumps(record))
    with SimBoard(tmp_path / "board") as sb:
        sb.wait_for("boot")
        rc, res = rig_update(capsys, "--hub-port", sb.han_path, "--port", sb.console_path,
                             "--record", str(rec), "--link", "uart-921600",
                             "--image", *map(str, files), "--trust", str(images.pub_path),
                             "--workdir", str(tmp_path / "w"))  # fmt: skip
        assert sb.running_version == V2
    assert rc == 0 and res["ok"], res
    assert (res["before_version"], res["reported_version"], res["running_version"]) == (V1, V2, V2)
    assert res["activation"] == "success" and res["link_profile"] == "uart-921600"
    assert res["link_bytes"] >= res["image_bytes"] >= sum(f.stat().st_size for f in files)
    assert res["console_bytes"] > 0  # the agent's log lines, read off the "USB" console
    assert "boots" not in res  # nothing sim-specific: the rig saw a real board
