"""`hanota board flash/deploy` for real boards: firmware checks before anything is written,
the exact esptool/mpremote command lines (--dry-run), `make -n flash`, bad ports, R4."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from hanota.board import defs
from hanota.paths import ROOT
from test_esp32_image import esp_image

HANOTA = str(Path(sys.executable).parent / "hanota")
_APP_SUB = {"ota_0": 0x10, "ota_1": 0x11}
_DATA_SUB = {"ota": 0x00, "phy": 0x01, "nvs": 0x02, "fat": 0x81}


def partition_table(parts: list[dict]) -> bytes:
    rows = b""
    for p in parts:
        typ = 0 if p["type"] == "app" else 1
        sub = (_APP_SUB if typ == 0 else _DATA_SUB)[p["subtype"]]
        label = p.get("label", p["name"]).encode().ljust(16, b"\0")
        rows += struct.pack("<2sBBII16sI", b"\xaa\x50", typ, sub, p["offset"], p["size"], label, 0)
    return rows + b"\xff" * (0xC00 - len(rows))


def merged_firmware(
    board_name: str, chip_id: int | None = None, parts: list | None = None
) -> bytes:
    """bootloader + partition table at flash 0x8000 + app at ota_0, as MicroPython ships it."""
    board = defs.load(board_name)
    cid = chip_id if chip_id is not None else {"esp32": 0, "esp32s3": 9}[board["chip"]]
    base = board["micropython"]["offset"]
    out = bytearray(esp_image(cid, body=4096, app=False))
    out += b"\xff" * (0x8000 - base - len(out))
    out += partition_table(parts or board["partitions"])
    ota0 = defs.partition(board, "ota_0")["offset"]
    out += b"\xff" * (ota0 - base - len(out))
    return bytes(out + esp_image(cid, body=0x4000))


def hanota(*args: str, cwd: str | Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([HANOTA, *args], capture_output=True, text=True, cwd=cwd)


@pytest.fixture
def fw(tmp_path: Path):
    def make(name: str, data: bytes) -> str:
        p = tmp_path / name
        p.write_bytes(data)
        return str(p)

    return make


def flash_dry(board: str, firmware: str, port: str = "/dev/ttyUSB0") -> subprocess.CompletedProcess:
    return hanota(
        "board", "flash", "--board", board, "--port", port, "--firmware", firmware, "--dry-run"
    )


def test_dry_run_prints_esptool_at_the_board_offset_then_mpremote(fw):
    res = flash_dry("ihd-esp32", fw("fw.bin", merged_firmware("ihd-esp32")))
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].split()[1:] == [
        "--chip", "esp32", "--port", "/dev/ttyUSB0", "--baud", "460800",
        "write-flash", "--erase-all", "0x1000", lines[0].split()[-1],
    ]  # fmt: skip
    assert lines[0].split()[0].endswith("esptool") and lines[0].endswith("fw.bin")
    assert (
        "mpremote connect /dev/ttyUSB0 fs cp -r" in lines[1]
        and "board.json" in lines[1]
        and lines[1].endswith(":.")
    )
    assert "/ports" in lines[1] and "/otaclient" in lines[1]
    assert "identity.json" in lines[2] and lines[2].endswith(":/data/")
    assert lines[3].endswith("mpremote connect /dev/ttyUSB0 reset")


def test_dry_run_for_s3_writes_at_zero_with_chip_esp32s3(fw):
    res = flash_dry("ppmid-esp32s3", fw("s3.bin", merged_firmware("ppmid-esp32s3")))
    assert res.returncode == 0, res.stderr
    words = res.stdout.splitlines()[0].split()
    assert words[words.index("--chip") + 1] == "esp32s3"
    assert words[-2] == "0x0"


def test_staged_tree_holds_only_this_kind_of_port(fw):
    res = flash_dry("ihd-esp32", fw("fw.bin", merged_firmware("ihd-esp32")))
    assert res.returncode == 0
    staged = Path(res.stdout.splitlines()[1].split()[6]).parent
    assert staged.name.startswith("ihd-esp32-")
    ports = sorted(p.name for p in (staged / "ports").iterdir())
    assert "esp32.mpy" in ports and "esp32_image.mpy" in ports and "unix.mpy" not in ports
    assert not [p for p in ports if p.endswith(".py")]  # modules go precompiled
    assert (staged / "board.json").exists() and not list(staged.rglob("__pycache__"))


def test_make_n_flash_expands_to_the_hanota_command():
    res = subprocess.run(
        ["make", "--no-print-directory", "-n", "flash", "BOARD=ihd-esp32", "PORT=/dev/ttyUSB0",
         "FIRMWARE=x.bin"],
        capture_output=True, text=True, cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("MAKE")},
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    last = res.stdout.strip().splitlines()[-1].split()
    assert last[0].endswith("hanota")
    assert last[1:] == [
        "board", "flash", "--board", "ihd-esp32", "--port", "/dev/ttyUSB0", "--firmware", "x.bin",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "make,needle",
    [
        (
            lambda: merged_firmware("ihd-esp32", chip_id=9),
            "is for esp32s3, board 'ihd-esp32' is esp32",
        ),
        (lambda: esp_image(0, body=0x4000), "app-only image"),
        (lambda: os.urandom(0x20000), "not an ESP firmware image"),
        (lambda: esp_image(0, app=False) + b"\xff" * 0x10000, "no partition table"),
        (lambda: b"\xe9" + bytes(5 * 1024 * 1024), "do not fit"),
    ],
    ids=["wrong-chip", "app-only", "random", "bootloader-only", "too-big"],
)
def test_bad_firmware_is_refused_with_a_clear_message(fw, make, needle):
    res = hanota("board", "flash", "--board", "ihd-esp32", "--port", "/dev/null", "--firmware",
                 fw("bad.bin", make()))  # fmt: skip
    assert res.returncode == 2
    assert needle in res.stderr, res.stderr


def test_firmware_with_another_partition_table_is_refused(fw):
    parts = [dict(p) for p in defs.load("ihd-esp32")["partitions"]]
    parts[3]["size"] = parts[4]["size"] = 0x1F0000  # e.g. a non-OTA or other-sized build
    parts[4]["offset"] = 0x200000
    res = hanota("board", "flash", "--board", "ihd-esp32", "--port", "/dev/null", "--firmware",
                 fw("other.bin", merged_firmware("ihd-esp32", parts=parts)))  # fmt: skip
    assert res.returncode == 2
    assert "another partition table" in res.stderr and "ota_0" in res.stderr, res.stderr


def test_nonexistent_port_names_it_and_lists_ports(fw):
    res = hanota("board", "flash", "--board", "ihd-esp32", "--port", "/dev/ttyNOPE0",
                 "--firmware", fw("fw.bin", merged_firmware("ihd-esp32")))  # fmt: skip
    assert res.returncode == 2
    assert "'/dev/ttyNOPE0' does not exist; available ports:" in res.stderr, res.stderr


def test_missing_firmware_file_is_a_clear_error(tmp_path):
    res = hanota("board", "flash", "--board", "ihd-esp32", "--port", "/dev/null",
                 "--firmware", str(tmp_path / "missing.bin"))  # fmt: skip
    assert res.returncode == 2 and "missing.bin" in res.stderr and "No such file" in res.stderr


def test_real_board_without_port_or_firmware_says_how():
    res = hanota("board", "flash", "--board", "ihd-esp32")
    assert res.returncode == 2
    assert "make flash BOARD=ihd-esp32 PORT=" in res.stderr


@pytest.mark.parametrize("cmd", [["deploy"], ["flash", "--firmware", "x.bin"]])
def test_production_board_refuses_deploy_and_flash(cmd):
    res = hanota("board", *cmd, "--board", "ppmid-esp32s3-prod", "--port", "/dev/ttyUSB0")
    assert res.returncode == 2
    assert "production board" in res.stderr and "no REPL" in res.stderr, res.stderr


def test_production_board_refuses_provisioning_over_the_console():
    res = hanota("board", "provision", "--board", "ppmid-esp32s3-prod", "--port", "/dev/ttyUSB0")
    assert res.returncode == 2 and "production board" in res.stderr


def test_deploy_dry_run_to_a_port(tmp_path):
    res = hanota(
        "board", "deploy", "--board", "ppmid-esp32s3", "--port", "/dev/ttyACM0", "--dry-run"
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(
        str(Path(sys.executable).parent / "mpremote") + " connect /dev/ttyACM0 fs cp"
    )
