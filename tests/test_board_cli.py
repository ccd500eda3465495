"""`hanota board list` and `hanota board info`: JSON with integer fields, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from vectors_esp import MPY128_4MIB_OTA_CSV, csv_rows

HANOTA = str(Path(sys.executable).parent / "hanota")
ESP_BOARDS = ("ihd-esp32", "ppmid-esp32s3", "ppmid-esp32s3-prod")


def hanota(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([HANOTA, *args], capture_output=True, text=True, cwd="/")


def test_list_json_has_the_esp_boards_with_integer_codes():
    res = hanota("board", "list", "--json")
    assert res.returncode == 0, res.stderr
    boards = {b["name"]: b for b in json.loads(res.stdout)}
    for name in ESP_BOARDS:
        assert name in boards
        for key in ("manufacturer_code", "image_type", "hw_version"):
            assert type(boards[name][key]) is int, (name, key)
    assert boards["ihd-esp32"]["image_type"] == 0x0083
    assert boards["ppmid-esp32s3"]["image_type"] == 0x0084
    assert boards["ppmid-esp32s3-prod"]["console"] == "off"


def test_list_text_names_every_board():
    res = hanota("board", "list")
    assert res.returncode == 0
    for name in ESP_BOARDS:
        assert name in res.stdout


@pytest.mark.parametrize("name", ESP_BOARDS)
def test_info_json_types_and_partitions(name):
    res = hanota("board", "info", name, "--json")
    assert res.returncode == 0, res.stderr
    b = json.loads(res.stdout)
    assert b["manufacturer_code"] == 0x1234 and b["hw_version"] == 0x0100
    assert b["chip"] in ("esp32", "esp32s3")
    parts = {p["name"]: p for p in b["partitions"]}
    assert {"ota_0", "ota_1", "otadata", "agent"} <= set(parts)
    for p in b["partitions"]:
        assert type(p["offset"]) is int and type(p["size"]) is int
    slot = 0x180000 if b["chip"] == "esp32" else 0x300000
    assert parts["ota_0"]["size"] == parts["ota_1"]["size"] == slot
    assert parts["otadata"] == {"name": "otadata", "type": "data", "subtype": "ota",
                                "offset": 0xD000, "size": 0x2000}  # fmt: skip
    end = max(p["offset"] + p["size"] for p in b["partitions"])
    assert end == b["flash_size"] == (4 if b["chip"] == "esp32" else 8) * 1024 * 1024


def test_ihd_esp32_is_micropythons_stock_4mib_ota_table_byte_for_byte():
    csv = (Path(__file__).parents[1] / "boards/ihd-esp32/partitions.csv").read_text()
    assert csv == MPY128_4MIB_OTA_CSV  # ports/esp32/partitions-4MiB-ota.csv at v1.28.0
    b = json.loads((Path(__file__).parents[1] / "boards/ihd-esp32/board.json").read_text())
    assert b["micropython"]["partitions_csv"] == "ports/esp32/partitions-4MiB-ota.csv"
    assert (b["micropython"]["firmware"], b["micropython"]["version"]) == (
        "ESP32_GENERIC-OTA",
        "1.28.0",
    )
    agent = next(p for p in b["partitions"] if p["name"] == "agent")
    assert agent["table"] is False and agent["label"] == "vfs"


@pytest.mark.parametrize("name", ESP_BOARDS)
def test_partitions_csv_matches_board_json_table_rows(name):
    root = Path(__file__).parents[1] / "boards" / name
    b = json.loads((root / "board.json").read_text())
    want = [
        (p.get("label", p["name"]), p["type"], p["subtype"], p["offset"], p["size"])
        for p in b["partitions"]
        if p.get("table", True)
    ]
    assert csv_rows((root / "partitions.csv").read_text()) == want


def test_s3_boards_list_vfs_in_their_own_table():
    for name in ("ppmid-esp32s3", "ppmid-esp32s3-prod"):
        root = Path(__file__).parents[1] / "boards" / name
        assert csv_rows((root / "partitions.csv").read_text())[-1] == (
            "vfs", "data", "fat", 0x610000, 0x1F0000,
        )  # fmt: skip
        assert 'LISTS "vfs"' in (root / "partitions.csv").read_text()


def test_info_text_says_which_partition_micropython_registers_at_boot():
    res = hanota("board", "info", "ihd-esp32")
    assert res.returncode == 0
    assert "table ports/esp32/partitions-4MiB-ota.csv" in res.stdout
    agent = next(line for line in res.stdout.splitlines() if line.strip().startswith("agent"))
    assert "MicroPython registers it at boot" in agent


def test_info_text_shows_codes_in_hex():
    res = hanota("board", "info", "ihd-esp32")
    assert res.returncode == 0
    assert "image_type 0x0083" in res.stdout and "ota_0" in res.stdout


def test_unknown_board_lists_the_known_ones():
    res = hanota("board", "info", "no-such-board")
    assert res.returncode == 2
    assert "unknown board 'no-such-board'" in res.stderr
    for name in ESP_BOARDS:
        assert name in res.stderr


@pytest.mark.parametrize("what", ["flash", "deploy"])
def test_dry_run_with_json_prints_one_document_and_the_plan_on_stderr(tmp_path, what):
    extra = ["--firmware", str(tmp_path / "none.bin")] if what == "flash" else []
    r = hanota("board", what, "--board", "ihd-esp32", "--port", "/dev/ttyUSB9", *extra,
               "--dry-run", "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["dry_run"] is True  # stdout is exactly one JSON document
    assert "/dev/ttyUSB9" in r.stderr and "mpremote" in r.stderr
