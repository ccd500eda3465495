"""`hanota board flash/deploy` for real boards: firmware checks before anything is written,
the exact esptool/mpremote command lines (--dry-run), `make -n flash`, bad ports, R4."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hanota.board import defs
from hanota.output import CommandError
from hanota.paths import ROOT
from test_esp32_image import esp_image
from vectors_esp import csv_rows, table_bin

HANOTA = str(Path(sys.executable).parent / "hanota")


def table_rows(board_name: str) -> list[tuple[str, str, str, int, int]]:
    """The rows of the board's partitions.csv (what its firmware's table holds)."""
    return csv_rows((ROOT / "boards" / board_name / "partitions.csv").read_text())


def merged_firmware(board_name: str, chip_id: int | None = None, rows: list | None = None,
                    table: bytes | None = None) -> bytes:  # fmt: skip
    """bootloader + partition table at flash 0x8000 + app at ota_0, as MicroPython ships it
    (quick synthetic images; tests/test_release_bin.py makes them with esptool)."""
    board = defs.load(board_name)
    cid = chip_id if chip_id is not None else {"esp32": 0, "esp32s3": 9}[board["chip"]]
    base = board["micropython"]["offset"]
    out = bytearray(esp_image(cid, body=4096, app=False))
    out += b"\xff" * (0x8000 - base - len(out))
    out += table if table is not None else table_bin(rows or table_rows(board_name))
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


def test_dry_run_prints_espefuse_then_esptool_at_the_board_offset_then_mpremote(fw):
    res = flash_dry("ihd-esp32", fw("fw.bin", merged_firmware("ihd-esp32")))
    assert res.returncode == 0, res.stderr
    efuse, esptool, deploy, store, reset = res.stdout.splitlines()
    assert efuse.split()[0].endswith("espefuse")
    assert efuse.split()[1:10] == [
        "--chip", "esp32", "--port", "/dev/ttyUSB0", "--after", "hard-reset", "summary",
        "FLASH_CRYPT_CNT", "--format",
    ]  # fmt: skip
    assert efuse.split()[10:12] == ["json", "--file"] and efuse.endswith("ttyUSB0.json")
    assert esptool.split()[1:] == [
        "--chip", "esp32", "--port", "/dev/ttyUSB0", "--baud", "460800",
        "write-flash", "--erase-all", "0x1000", esptool.split()[-1],
    ]  # fmt: skip
    assert esptool.split()[0].endswith("esptool") and esptool.endswith("fw.bin")
    assert "mpremote connect /dev/ttyUSB0 fs cp -r" in deploy and "board.json" in deploy
    assert deploy.endswith(":.") and "/ports" in deploy and "/otaclient" in deploy
    assert "identity.json" in store and store.endswith(":/data/")
    assert reset.endswith("mpremote connect /dev/ttyUSB0 reset")


def test_dry_run_for_s3_writes_at_zero_with_chip_esp32s3(fw):
    res = flash_dry("ppmid-esp32s3", fw("s3.bin", merged_firmware("ppmid-esp32s3")))
    assert res.returncode == 0, res.stderr
    efuse, esptool = res.stdout.splitlines()[:2]
    assert "--chip esp32s3" in efuse and " SPI_BOOT_CRYPT_CNT " in efuse
    words = esptool.split()
    assert words[words.index("--chip") + 1] == "esp32s3"
    assert words[-2] == "0x0"


def test_staged_tree_holds_only_this_kind_of_port(fw):
    res = flash_dry("ihd-esp32", fw("fw.bin", merged_firmware("ihd-esp32")))
    assert res.returncode == 0
    staged = Path(res.stdout.splitlines()[2].split()[6]).parent
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


def refused(fw, data: bytes, board: str = "ihd-esp32") -> str:
    res = hanota("board", "flash", "--board", board, "--port", "/dev/null", "--firmware",
                 fw("bad.bin", data))  # fmt: skip
    assert res.returncode == 2, res.stdout + res.stderr
    return res.stderr


STOCK = table_rows("ihd-esp32")  # MicroPython v1.28 partitions-4MiB-ota.csv


def test_firmware_with_other_slot_sizes_is_refused_naming_where_vfs_would_go(fw):
    rows = STOCK[:3] + [("ota_0", "app", "ota_0", 0x10000, 0x1C0000),
                        ("ota_1", "app", "ota_1", 0x1D0000, 0x1C0000)]  # fmt: skip
    err = refused(fw, merged_firmware("ihd-esp32", rows=rows))
    assert "MicroPython would make 'vfs' at 0x390000+0x70000" in err, err
    assert "'agent' partition at 0x310000+0xf0000" in err


def test_firmware_with_a_partition_after_ota_1_is_refused(fw):
    err = refused(fw, merged_firmware("ihd-esp32", rows=STOCK + [("nvs2", "data", "nvs", 0x310000, 0x4000)]))  # fmt: skip
    assert "'vfs' at 0x314000+0xec000" in err, err


def test_firmware_with_a_vfs_row_as_before_v1_26_is_refused(fw):
    rows = STOCK + [("vfs", "data", "fat", 0x310000, 0xF0000)]
    err = refused(fw, merged_firmware("ihd-esp32", rows=rows))
    assert "has a 'vfs' partition in its table (0x310000+0xf0000)" in err, err
    assert "ESP32_GENERIC-OTA v1.28.0" in err


def test_firmware_with_same_ends_but_other_table_is_refused(fw):
    rows = list(STOCK)
    rows[2] = ("phy_init", "data", "phy", 0xE000, 0x1000)
    err = refused(fw, merged_firmware("ihd-esp32", rows=rows))
    assert "another partition table: 'phy_init' is 0xe000+0x1000" in err, err


def test_firmware_with_a_partition_past_the_flash_is_refused(fw):
    rows = STOCK[:3] + [
        ("ota_0", "app", "ota_0", 0x10000, 0x270000),
        ("ota_1", "app", "ota_1", 0x280000, 0x270000),
    ]  # 8MiBplus-ota on 4 MB
    err = refused(fw, merged_firmware("ihd-esp32", rows=rows))
    assert "'ota_1' (0x280000+0x270000) ends past the 4 MB flash" in err, err


def test_table_with_a_wrong_md5_is_refused(fw):
    table = bytearray(table_bin(STOCK))
    table[5 * 32 + 20] ^= 0xFF  # a byte of the MD5 entry
    err = refused(fw, merged_firmware("ihd-esp32", table=bytes(table)))
    assert "wrong MD5 entry" in err, err


def test_table_without_md5_is_accepted_as_the_bootloader_does(fw):
    res = flash_dry("ihd-esp32", fw("nomd5.bin", merged_firmware("ihd-esp32", table=table_bin(STOCK, md5=False))))  # fmt: skip
    assert res.returncode == 0, res.stderr


def test_s3_firmware_without_the_vfs_row_is_refused(fw):
    err = refused(fw, merged_firmware("ppmid-esp32s3", rows=table_rows("ppmid-esp32s3")[:-1]),
                  "ppmid-esp32s3")  # fmt: skip
    assert "another partition table: 'vfs' is missing" in err, err


def test_flash_json_reports_the_runtime_vfs(fw):
    res = hanota("board", "flash", "--board", "ihd-esp32", "--port", "/dev/ttyUSB0", "--firmware",
                 fw("fw.bin", merged_firmware("ihd-esp32")), "--dry-run", "--json")  # fmt: skip
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)  # one JSON document: the plan is on stderr
    assert "write-flash" in res.stderr
    assert doc["runtime_vfs"] == [0x310000, 0xF0000] and doc["partitions"] == 5
    s3 = hanota("board", "flash", "--board", "ppmid-esp32s3", "--port", "/dev/ttyACM0",
                "--firmware", fw("s3.bin", merged_firmware("ppmid-esp32s3")), "--dry-run", "--json")  # fmt: skip
    assert json.loads(s3.stdout)["runtime_vfs"] is None


def with_agent(board: str, **change) -> dict:
    b = json.loads((ROOT / "boards" / board / "board.json").read_text())
    agent = next(p for p in b["partitions"] if p["name"] == "agent")
    agent.update(change)
    return b


@pytest.mark.parametrize(
    "change,needle",
    [
        ({"offset": 0x320000, "size": 0xE0000}, "to the end of flash: 0x310000+0xf0000"),
        ({"size": 0xE0000}, "to the end of flash: 0x310000+0xf0000, not 0x310000+0xe0000"),
        ({"label": "agent"}, "only MicroPython's run-time partition"),
        ({"subtype": "littlefs"}, "only MicroPython's run-time partition"),
        ({"table": "no"}, "'table' must be true or false"),
    ],
    ids=["offset", "size", "label", "subtype", "not-bool"],
)
def test_board_json_runtime_partition_must_be_where_micropython_puts_it(change, needle):
    with pytest.raises(CommandError) as exc:
        defs.validate(with_agent("ihd-esp32", **change), "ihd-esp32")
    assert needle in str(exc.value)


def test_board_json_runtime_vfs_needs_micropython_1_26():
    board = with_agent("ihd-esp32")
    board["micropython"]["version"] = "1.25.0"
    with pytest.raises(CommandError, match="before 1.26"):
        defs.validate(board)
    board["micropython"]["version"] = "1.28"
    with pytest.raises(CommandError, match="X.Y.Z"):
        defs.validate(board)


def test_board_json_names_the_release_layout():
    board = with_agent("ihd-esp32")
    del board["micropython"]["partitions_csv"]
    with pytest.raises(CommandError, match="micropython.partitions_csv"):
        defs.validate(board)
    board = with_agent("ihd-esp32")
    board["micropython"]["offset"] = 0
    with pytest.raises(CommandError, match="offset on esp32 is 0x1000"):
        defs.validate(board)


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
