"""ports/esp32.py under the real MicroPython unix port, over fake esp32/machine modules
(tests/esp32_fake.py: NOR flash, MicroPython's Partition semantics, otadata rollback):
the port conformance suite, a staged update through trial boot and confirm, rollback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hanota.board import defs
from mpy import check_mpy
from test_esp32_image import esp_image, merged_image

pytestmark = pytest.mark.micropython

PRELUDE = """
import sys, json
sys.path.append({tests!r})
import esp32_fake
board = json.load(open("board.json"))
esp32_fake.install(board)
from otaclient.kvstore import KVStore
import os
try:
    os.mkdir("store")
except OSError:
    pass
from ports import esp32 as p
def port():
    return p.Esp32Port(board, store=KVStore("store"))
def stage(name):
    data = open(name, "rb").read()
    pt = port()
    for b in range((len(data) + 4095) // 4096):
        pt.erase(b)
    for off in range(0, len(data), 255):
        pt.write(off, data[off:off + 255])
    return pt, len(data)
"""


def run(tmp_path: Path, board: str, body: str, **files: bytes) -> str:
    (tmp_path / "board.json").write_text(json.dumps(defs.load(board)))
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    code = PRELUDE.format(tests=str(Path(__file__).parent)) + body
    return check_mpy(code, cwd=str(tmp_path), heap="256k")


@pytest.mark.parametrize("board", ["ihd-esp32", "ppmid-esp32s3"])
def test_conformance_suite_passes_on_the_esp32_port(tmp_path, board):
    out = run(tmp_path, board, """
from ports.conformance import run_conformance
assert run_conformance(port(), otadata=True) == 0
""")  # fmt: skip
    assert "CONFORMANCE 10/10" in out, out


def test_staged_app_boots_on_trial_then_confirms(tmp_path):
    out = run(tmp_path, "ihd-esp32", """
pt, n = stage("app.bin")
pt.check_app(n)
pt.set_pending()
assert not pt.pending_verify()
esp32_fake.boot()
new = port()
print("after boot", new.running_slot(), new.pending_verify(), hex(new.running_version()))
new.confirm()
print("after confirm", new.pending_verify())
esp32_fake.boot()
print("next boot", port().running_slot())
""", **{"app.bin": esp_image(version=b"0x01020304")})  # fmt: skip
    assert "after boot ota_1 True 0x1020304" in out
    assert "after confirm False" in out and "next boot ota_1" in out


def test_unconfirmed_trial_rolls_back_on_the_next_reset(tmp_path):
    out = run(tmp_path, "ihd-esp32", """
pt, n = stage("app.bin")
pt.check_app(n)
pt.set_pending()
esp32_fake.boot()
print("trial", port().running_slot(), port().pending_verify())
esp32_fake.boot()
print("rolled back", port().running_slot(), port().pending_verify())
""", **{"app.bin": esp_image()})  # fmt: skip
    assert "trial ota_1 True" in out and "rolled back ota_0 False" in out


@pytest.mark.parametrize(
    "name,data,code",
    [
        ("merged.bin", merged_image(), "NOT_APP"),
        ("s3.bin", esp_image(chip_id=9), "WRONG_CHIP"),
    ],
)
def test_check_app_refuses_what_would_brick(tmp_path, name, data, code):
    out = run(tmp_path, "ihd-esp32", f"""
pt, n = stage({name!r})
try:
    pt.check_app(n)
    print("ACCEPTED")
except ValueError as e:
    print("refused", e.code)
""", **{name: data})  # fmt: skip
    assert f"refused {code}" in out, out


def test_app_larger_than_the_slot_is_refused_without_reading(tmp_path):
    out = run(tmp_path, "ihd-esp32", """
pt = port()
try:
    pt.check_app(pt.slot_size + 1)
except ValueError as e:
    print("refused", e.code, pt.slot_size)
""")  # fmt: skip
    assert "refused TOO_LARGE 1572864" in out


def test_han_link_reads_what_the_uart_received(tmp_path):
    out = run(tmp_path, "ppmid-esp32s3", """
pt = port()
pt.link.uart.rx += b"hello"
buf = bytearray(16)
n = pt.link.readinto(buf, 50)
print("got", bytes(buf[:n]), pt.link.readinto(buf, 20))
""")  # fmt: skip
    assert "got b'hello' 0" in out
