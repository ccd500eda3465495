"""The port conformance checks (firmware/ports/conformance.py) on ports/esp32.py over the ESP32
fake, under the real MicroPython unix port, boot after boot as on a board, each check its own
pytest result. The known-good app is an ESP-IDF app image esptool accepts, with the empty
app descriptor version of a stock build; the previous app carries a "0x" descriptor version."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hanota.board import defs
from mpy import check_mpy
from port_conformance import CHECK_NAMES, REBOOT_NAMES, parse
from test_esp32_image import esp_image

pytestmark = pytest.mark.micropython

PREV, GOOD = 0x01000000, 0x01000101

DRIVER = """
import sys, json
sys.path.append({tests!r})
import esp32_fake as f
from otaclient.kvstore import KVStore
from ports.conformance import step
board = json.load(open("board.json"))
B = f.install(board)
p = f.port_module()
try:
    import os
    os.mkdir("store")
except OSError:
    pass
def boot_and_run(steps, power=False):
    slot = f.power_on() if power else f.boot()
    print("BOOT", slot, B.trial)
    port = p.Esp32Port(board, store=KVStore("store"))
    for s in steps:
        step(port, *s)
f.flash_app("ota_0", open("prev.bin", "rb").read())
good = ["stage_app", "good.bin", {size}, {good}]
boot_and_run([["clock_fresh"]] + [[n] for n in {checks!r}] + [good], power=True)
boot_and_run([["trial_boot", {good}], ["confirm"], ["rearm", {prev}]])
try:
    boot_and_run([["confirm_keeps_armed"], ["watchdog", board["watchdog_ms"]]])
except f.Reset as e:
    print("RESET", e.why, B.ms)
boot_and_run([["watchdog_rollback", {good}]])
print("BOOTS", B.boots)
"""


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> tuple[dict[str, str], str]:
    tmp = tmp_path_factory.mktemp("esp32conf")
    (tmp / "board.json").write_text(json.dumps(defs.load("ihd-esp32")))
    (tmp / "prev.bin").write_bytes(esp_image(version=b"0x%08x" % PREV))
    good = esp_image(version=b"", body=20000)
    (tmp / "good.bin").write_bytes(good)
    code = DRIVER.format(
        tests=str(Path(__file__).parent), size=len(good), good=GOOD, prev=PREV, checks=CHECK_NAMES
    )
    out = check_mpy(code, cwd=str(tmp), heap="2m")
    return parse(out), out


@pytest.mark.parametrize("name", CHECK_NAMES + REBOOT_NAMES)
def test_conformance_check_passes_on_the_esp32_port(results, name):
    found, out = results
    assert name in found, f"{name} did not run:\n{out}"
    assert found[name] == "", f"{name}: {found[name]}"


def test_conformance_boots_follow_the_real_bootloader(results):
    _, out = results
    # first boot (ota_0), the good app's trial (ota_1), the re-armed previous app's trial
    # (ota_0) hanging until the watchdog, then the rollback to the confirmed good app
    assert "RESET wdt 60000" in out, out
    assert "BOOTS [(0, False), (1, True), (0, True), (1, False)]" in out, out
