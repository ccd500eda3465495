"""ports/esp32.py under the real MicroPython unix port, on a fake stock ESP32
(tests/esp32_fake.py: NOR flash, MicroPython v1.28's esp32.Partition and machine.WDT, ESP-IDF
v5.5.1's set_boot image check, otadata and bootloader): what the port does across boots."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hanota.board import defs
from mpy import check_mpy
from test_esp32_image import esp_image, merged_image

pytestmark = pytest.mark.micropython

V1 = esp_image(version=b"")  # stock builds leave esp_app_desc_t.version empty
V2 = esp_image(version=b"", body=9000)
BAD_SUM = esp_image(version=b"", body=9000, checksum_xor=0x55)  # SHA-256 good, checksum not

PRELUDE = """
import sys, json
sys.path.append({tests!r})
import esp32_fake as f
board = json.load(open("board.json"))
B = f.install(board, encrypted={encrypted})
p = f.port_module()
from ports.slot import PortError
def port():
    return p.Esp32Port(board, store=f.Store())
def stage(pt, name):
    data = open(name, "rb").read()
    for b in range((len(data) + 4095) // 4096):
        pt.erase(b)
    for off in range(0, len(data), 1024):
        pt.write(off, data[off:off + 1024])
    return len(data)
def update(name, version):
    pt = port()
    pt.check_app(stage(pt, name))
    pt.set_pending(version)
    return pt
f.flash_app("ota_0", open("v1.bin", "rb").read())
f.power_on()
"""


def run(tmp_path: Path, body: str, board: str = "ihd-esp32", encrypted=False, **files) -> str:
    (tmp_path / "board.json").write_text(json.dumps(defs.load(board)))
    files = {"v1.bin": V1, "v2.bin": V2, "badsum.bin": BAD_SUM, **files}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    code = PRELUDE.format(tests=str(Path(__file__).parent), encrypted=encrypted) + body
    return check_mpy(code, cwd=str(tmp_path), heap="2m")  # the fake flash lives in it


def test_activated_version_is_reported_with_an_empty_app_descriptor_version(tmp_path):
    out = run(tmp_path, """
print("before", port().running_version())
update("v2.bin", 0x01020305)
print("armed", port().running_version())
print("boot", f.boot())
pt = port()
print("trial", hex(pt.running_version()), pt.pending_verify())
pt.confirm()
f.boot()
print("confirmed", hex(port().running_version()), B.boots)
""")  # fmt: skip
    assert "before None" in out and "armed None" in out, out
    assert "boot 1" in out and "trial 0x1020305 True" in out, out
    assert "confirmed 0x1020305 [(0, False), (1, True), (1, False)]" in out, out


def test_rolled_back_board_does_not_report_the_recorded_version(tmp_path):
    out = run(tmp_path, """
update("v2.bin", 0x01020305)
f.boot()
print("trial", hex(port().running_version()))
f.boot()
pt = port()
print("rolled back", pt.running_slot(), pt.running_version(), pt.pending_verify())
""")  # fmt: skip
    assert "trial 0x1020305" in out
    assert "rolled back ota_0 None False" in out, out


def test_descriptor_version_in_0x_form_is_the_fallback(tmp_path):
    out = run(tmp_path, """
f.flash_app("ota_0", open("desc.bin", "rb").read())
f.power_on()
print("desc", hex(port().running_version()))
""", **{"desc.bin": esp_image(version=b"0x00010203")})  # fmt: skip
    assert "desc 0x10203" in out


def test_hanging_trial_firmware_rolls_back_through_the_watchdog(tmp_path):
    out = run(tmp_path, """
update("v2.bin", 7)
f.boot()
pt = port()
assert pt.pending_verify()
pt.watchdog(board["watchdog_ms"])  # main.py arms it on the trial boot; the app then hangs
try:
    while True:
        pt.sleep_ms(1000)
except f.Reset as e:
    print("reset by", e.why, "after", B.ms, "ms")
print("boot", f.boot(), f.entries())
pt = port()
print("old", pt.running_slot(), pt.pending_verify(), pt.running_version())
""")  # fmt: skip
    assert "reset by wdt after 60000 ms" in out, out
    assert "boot 0 ((1, 2, True), (2, 4, True))" in out, out  # the trial entry ABORTED
    assert "old ota_0 False None" in out


def test_fed_watchdog_does_not_reset_the_board(tmp_path):
    out = run(tmp_path, """
pt = port()
pt.watchdog(1000)
for i in range(30):
    pt.sleep_ms(900)
    pt.feed()
print("alive at", B.ms)
try:
    pt.watchdog(0)
except ValueError as e:
    print("refused", e)
""")  # fmt: skip
    assert "alive at 27000" in out and "refused WDT timeout too short" in out


def test_set_boot_validation_failure_is_a_port_error_and_otadata_is_unchanged(tmp_path):
    out = run(tmp_path, """
pt = port()
n = stage(pt, "badsum.bin")
pt.check_app(n)  # check_app does not XOR-check; ESP-IDF's esp_image_verify does
before = f.entries()
try:
    pt.set_pending(9)
    print("ARMED")
except PortError as e:
    print("refused", e.code, f.entries() == before)
print("boot", f.boot())
""")  # fmt: skip
    assert "refused VALIDATE_FAILED True" in out, out
    assert "boot 0" in out


def test_confirm_after_arming_in_the_same_boot_does_not_disarm_rollback(tmp_path):
    out = run(tmp_path, """
pt = update("v2.bin", 5)
pt.confirm()  # the running slot is VALID, not on trial: nothing to confirm
print("entries", f.entries())
print("boot", f.boot(), "trial", B.trial)
f.boot()
print("rolled back to", port().running_slot())
""")  # fmt: skip
    assert "entries ((1, 2, True), (2, 0, True))" in out, out
    assert "boot 1 trial True" in out and "rolled back to ota_0" in out, out


def test_trial_app_can_neither_stage_nor_arm_until_it_is_confirmed(tmp_path):
    out = run(tmp_path, """
update("v2.bin", 5)
f.boot()
pt = port()
for what in ("stage", "arm"):
    try:
        stage(pt, "v1.bin") if what == "stage" else pt.set_pending(6)
    except PortError as e:
        print(what, "refused", e.code)
print("slot 0 intact", f.image_ok(f._ota_row(0)))
pt.confirm()
print("entries", f.entries())
stage(pt, "v1.bin")
pt.set_pending(6)
print("armed", f.entries())
""")  # fmt: skip
    assert "stage refused TRIAL" in out and "arm refused ARM_FAILED" in out, out
    assert "slot 0 intact True" in out
    assert "entries ((1, 2, True), (2, 2, True))" in out
    assert "armed ((3, 0, True), (2, 2, True))" in out, out


def test_encrypted_board_refuses_to_stage(tmp_path):
    out = run(tmp_path, """
pt = port()
try:
    pt.erase(0)
except PortError as e:
    print("refused", e.code, e)
""", encrypted=True, **{"v1.bin": V1})  # fmt: skip
    assert "refused ENCRYPTED" in out and "flash encryption" in out, out


def test_clock_reads_zigbee_zero_after_power_on_until_set(tmp_path):
    out = run(tmp_path, """
pt = port()
pt.sleep_ms(5000)
print("fresh", pt.now())
pt.set_now(800000000)
pt.sleep_ms(2000)
print("set", pt.now())
f.boot()
print("after reset", port().now())
f.power_on()
print("after power cut", port().now())
""")  # fmt: skip
    assert "fresh 5" in out and "set 800000002" in out, out
    assert "after reset 800000002" in out and "after power cut 0" in out, out


@pytest.mark.parametrize(
    "name,data,code",
    [
        ("merged.bin", merged_image(), "NOT_APP"),
        ("s3.bin", esp_image(chip_id=9), "WRONG_CHIP"),
    ],
)
def test_check_app_refuses_what_would_brick(tmp_path, name, data, code):
    out = run(tmp_path, f"""
pt = port()
n = stage(pt, {name!r})
try:
    pt.check_app(n)
    print("ACCEPTED")
except ValueError as e:
    print("refused", e.code)
""", **{name: data})  # fmt: skip
    assert f"refused {code}" in out, out


def test_app_larger_than_the_slot_is_refused_without_reading(tmp_path):
    out = run(tmp_path, """
pt = port()
try:
    pt.check_app(pt.slot_size + 1)
except ValueError as e:
    print("refused", e.code, pt.slot_size)
""")  # fmt: skip
    assert "refused TOO_LARGE 1572864" in out


def test_han_link_reads_what_the_uart_received(tmp_path):
    out = run(tmp_path, """
pt = port()
pt.link.uart.rx += b"hello"
buf = bytearray(16)
n = pt.link.readinto(buf, 50)
print("got", bytes(buf[:n]), pt.link.readinto(buf, 20))
""", board="ppmid-esp32s3", **{"v1.bin": esp_image(chip_id=9, version=b"")})  # fmt: skip
    assert "got b'hello' 0" in out


def test_arming_twice_in_one_boot_keeps_the_running_slots_entry(tmp_path):
    out = run(tmp_path, """
pt = update("v2.bin", 5)
once = f.entries()
pt.set_pending(6)  # a second esp_rewrite_ota_data would copy seq 2 over the VALID entry
print("same", f.entries() == once)
print("boot", f.boot(), hex(port().running_version()))
f.boot()
print("rolled back to", port().running_slot())
""")  # fmt: skip
    assert "same True" in out and "boot 1 0x6" in out, out
    assert "rolled back to ota_0" in out


def test_check_app_returns_the_descriptor_version_only_when_the_build_was_given_one(tmp_path):
    out = run(tmp_path, """
pt = port()
print("stock", pt.check_app(stage(pt, "v2.bin")))
pt = port()
print("given", hex(pt.check_app(stage(pt, "ver.bin"))))
""", **{"ver.bin": esp_image(version=b"0x01020304", body=9000)})  # fmt: skip
    assert "stock None" in out and "given 0x1020304" in out, out


def test_han_uart_ring_holds_what_pipelined_pages_have_in_flight(tmp_path):
    # The agent asks the next page while half a page is still to come, so up to 1.5 pages
    # of Image Block Responses travel unread while the loop erases flash or checks a
    # signature: the UART's receive ring must hold them all, as framed on the wire.
    from otaclient import link, policy, zcl, zcl_client

    cfg = policy.DEFAULTS
    blocks = cfg["page_size"] // cfg["max_block"] * 3 // 2
    data = bytes(range(256))[: cfg["max_block"]]
    rsp = zcl.encode_image_block_rsp(zcl.SUCCESS, 0x1234, 0x0101, 0x01020304, 0, data)
    frame = link.encode(0, 1, 0, zcl_client.encode_frame(zcl_client.IMAGE_BLOCK_RSP, 0, rsp, True))
    out = run(tmp_path, 'u = p.Uart(board["han_uart"])\nprint("rxbuf", u.uart.rxbuf)\n')
    ring = int(out.split("rxbuf")[1])
    assert ring >= blocks * len(frame), (ring, blocks, len(frame))
