"""The real agent on the real ESP32 port over the fake stock ESP32 (tests/esp32_fake.py),
under the MicroPython unix port, against the CH double: what issue 16's board does end to end.

The fake's clock is the only clock (the port's time, the watchdog, the RTC from 2000), the
HAN UART is pumped to the double after every agent step, and a reset raised by the port or
the fake's watchdog reboots through the fake's bootloader, as main.py would boot again.
"""

from __future__ import annotations

import json
from pathlib import Path

import agent_util as U
import pytest
from hanota.board import defs
from mpy import check_mpy
from test_esp32_port import BAD_SUM  # SHA-256 good, XOR checksum not
from test_esp32_port import V1 as STOCK_V1  # stock builds: esp_app_desc_t.version empty
from test_esp32_port import V2 as STOCK_V2

pytestmark = pytest.mark.micropython

V2 = 0x01020305

SCRIPT = """
import sys, json
sys.path.append({tests!r})
import esp32_fake as f
from ota_double import OtaDouble
board = json.load(open("board.json"))
cfg = json.load(open("cfg.json"))
B = f.install(board)
p = f.port_module()
for name in cfg["store"]:
    B.store[name] = open(name, "rb").read()
f.flash_app("ota_0", open("v1.bin", "rb").read())
f.power_on()
dbl = OtaDouble([open(n, "rb").read() for n in cfg["files"]])
dbl.device_pub, dbl.eui64 = bytes.fromhex(cfg["pub"]), bytes.fromhex(cfg["eui64"])
dbl.reoffer = False  # one offer: what follows a failure is the board's report
from otaclient.agent import Agent
R = {{"resets": [], "boots": None}}

def start():
    port = p.Esp32Port(board, store=f.Store())
    if port.pending_verify():  # main.py: the trial boot's watchdog, before the agent
        port.watchdog(board["watchdog_ms"])
        if cfg["hang"]:  # the new app hangs before its agent loop: nothing feeds
            while True:
                f.advance(1000)
    a = Agent(port)
    a.boot()
    return a

def pump(a):
    uart = a.port.link.uart
    if uart.tx:
        out, uart.tx = bytes(uart.tx), bytearray()
        for frame in dbl(out):
            uart.rx += frame

a = None
while B.ms + 1000 * B.rtc < 2000000 and len(R["resets"]) < 4:
    try:
        if a is None:
            a = start()
        a.step()
        pump(a)
    except f.Reset as e:
        R["resets"].append(e.why)
        f.boot()
        a = None
        continue
    if dbl.alerts and not a.state.get("alerts") and a.client.st == 0:
        break
R["boots"] = B.boots
R["running"] = a.port.running_version()
R["announced"] = [e[1] for e in dbl.events if e[0] == "announce"]
R["alerts"] = sorted(set((x.version, x.result) for x, ok in dbl.alerts))
R["signed"] = all(ok for x, ok in dbl.alerts)
R["state"] = json.loads(B.store.get("agent.json") or "{{}}")
print("RESULT " + json.dumps(R))
"""


def run(tmp_path: Path, payload: bytes, hang: bool = False) -> dict:
    b = defs.load("ihd-esp32")
    (tmp_path / "board.json").write_text(json.dumps(b))
    (tmp_path / "v1.bin").write_bytes(STOCK_V1)
    files = U.images(payload, V2, mfr=b["manufacturer_code"], itype=b["image_type"],
                     hw=(b["hw_version"], b["hw_version"]))  # fmt: skip
    names = []
    for i, data in enumerate(files):
        names.append(f"f{i}.zigbee")
        (tmp_path / names[-1]).write_bytes(data)
    store = U.store()
    for name, data in store.items():
        (tmp_path / name).write_bytes(data)
    cfg = {"store": list(store), "files": names, "hang": hang, "pub": U.device_pub().hex(),
           "eui64": U.EUI64.hex()}  # fmt: skip
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    out = check_mpy(
        SCRIPT.format(tests=str(Path(__file__).parent)), cwd=str(tmp_path), heap="4m"
    )  # fmt: skip; the fake flash lives in the heap
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    return json.loads(line[7:])


def test_a_stock_board_announces_unknown_then_reports_the_activated_version(tmp_path):
    r = run(tmp_path, STOCK_V2)
    assert r["boots"] == [[0, False], [1, True]], r  # the trial boot, then confirmed
    assert r["running"] == V2 and r["resets"] == ["soft"]
    assert r["announced"] == [0xFFFFFFFF, V2], r["announced"]
    assert r["alerts"] == [[V2, 0]] and r["signed"] and r["state"]["floor"] == V2


def test_a_set_boot_validation_failure_is_a_reported_failed_activation(tmp_path):
    """check_app passes (it checks the SHA-256, not the XOR checksum); ESP-IDF's set_boot
    refuses the image: a failure alert, no reset, the staged image dropped."""
    r = run(tmp_path, BAD_SUM)
    assert r["boots"] == [[0, False]] and r["resets"] == [] and r["running"] is None, r
    assert r["alerts"] == [[0xFFFFFFFF, 1]] and r["signed"]
    assert r["state"]["failed"] == [[V2, 1]] and "activating" not in r["state"]


def test_a_hanging_trial_firmware_rolls_back_through_the_watchdog(tmp_path):
    r = run(tmp_path, STOCK_V2, hang=True)
    assert r["resets"] == ["soft", "wdt"], r
    assert r["boots"] == [[0, False], [1, True], [0, False]], r["boots"]  # rolled back
    assert r["alerts"] == [[0xFFFFFFFF, 1]] and r["announced"][-1] == 0xFFFFFFFF
    assert r["state"]["failed"] == [[V2, 1]]
