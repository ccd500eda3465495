"""`hanota board list` and `hanota board info`: JSON with integer fields, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

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


def test_ihd_esp32_is_micropythons_stock_4mib_ota_table():
    csv = (Path(__file__).parents[1] / "boards/ihd-esp32/partitions.csv").read_text()
    rows = [r.split(",")[:5] for r in csv.splitlines() if r and not r.startswith("#")]
    rows = [[c.strip() for c in r] for r in rows]
    assert rows == [
        ["nvs", "data", "nvs", "0x9000", "0x4000"],
        ["otadata", "data", "ota", "0xd000", "0x2000"],
        ["phy_init", "data", "phy", "0xf000", "0x1000"],
        ["ota_0", "app", "ota_0", "0x10000", "0x180000"],
        ["ota_1", "app", "ota_1", "0x190000", "0x180000"],
        ["vfs", "data", "fat", "0x310000", "0x0f0000"],
    ]


@pytest.mark.parametrize("name", ESP_BOARDS)
def test_partitions_csv_matches_board_json(name):
    root = Path(__file__).parents[1] / "boards" / name
    b = json.loads((root / "board.json").read_text())
    rows = [[c.strip() for c in r.split(",")[:5]] for r in (root / "partitions.csv").read_text().splitlines()
            if r and not r.startswith("#")]  # fmt: skip
    want = [
        [p.get("label", p["name"]), p["type"], p["subtype"], p["offset"], p["size"]]
        for p in b["partitions"]
    ]
    assert [[r[0], r[1], r[2], int(r[3], 16), int(r[4], 16)] for r in rows] == want


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
