"""Golden vectors from Espressif's esptool 5.6.0 against the project's checks: partition tables
of MicroPython v1.28's OTA CSVs, app images by `elf2image` judged by `image-info`, and
release-like merged .bin files by `merge-bin` driven through `hanota board flash --dry-run`."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from hanota.board import defs, flash, ptable
from hanota.paths import FIRMWARE, ROOT
from hanota.sim.flash import partition_table
from vectors_esp import (
    ENTRIES_4MIB_OTA,
    MD5_4MIB_OTA,
    MPY128_4MIB_OTA_CSV,
    MPY128_8MIB_OTA_CSV,
    bootloader,
    csv_rows,
    elf2image,
    image_info,
    merge_bin,
    table_bin,
)

sys.path.insert(0, str(FIRMWARE))
from ports import esp32_image as ei  # noqa: E402

HANOTA = str(Path(sys.executable).parent / "hanota")
STOCK_4MIB = csv_rows(MPY128_4MIB_OTA_CSV)


@pytest.fixture(scope="module")
def vec(tmp_path_factory):
    """Images made once per module with esptool: {chip: (bootloader, app)}."""
    tmp = tmp_path_factory.mktemp("esptool")
    return tmp, {
        chip: (bootloader(tmp, chip), elf2image(tmp, chip)) for chip in ("esp32", "esp32s3")
    }


def test_v128_4mib_ota_table_is_the_bytes_esp32_md_records():
    table = table_bin(STOCK_4MIB)
    for i, want in enumerate(ENTRIES_4MIB_OTA):
        assert table[i * 32 : i * 32 + 12].hex() == want.replace(" ", ""), i
    labels = [table[i * 32 + 12 : i * 32 + 28].rstrip(b"\0") for i in range(5)]
    assert labels == [b"nvs", b"otadata", b"phy_init", b"ota_0", b"ota_1"]
    assert table[5 * 32 : 5 * 32 + 16] == b"\xeb\xeb" + b"\xff" * 14
    assert table[5 * 32 + 16 : 6 * 32].hex() == MD5_4MIB_OTA
    assert hashlib.md5(table[: 5 * 32]).hexdigest() == MD5_4MIB_OTA
    assert len(table) == 0xC00 and table[6 * 32 :] == b"\xff" * (0xC00 - 6 * 32)


def test_v128_8mib_ota_table_has_the_rows_esp32_md_records_and_no_vfs():
    rows = csv_rows(MPY128_8MIB_OTA_CSV)
    assert rows[3:] == [("ota_0", "app", "ota_0", 0x10000, 0x270000),
                        ("ota_1", "app", "ota_1", 0x280000, 0x270000)]  # fmt: skip
    assert rows[:3] == STOCK_4MIB[:3]
    parsed = ptable.parse(table_bin(rows), 0)
    assert [e["label"] for e in parsed] == ["nvs", "otadata", "phy_init", "ota_0", "ota_1"]
    # on an 8 MB board MicroPython registers vfs from 0x4F0000 (end of ota_1) to 8 MB
    assert ptable.runtime_vfs(parsed, 0x800000) == (0x4F0000, 0x310000)
    assert ptable.runtime_vfs(parsed, 0x1000000) == (0x4F0000, 0xB10000)  # physical size


def test_runtime_vfs_of_the_stock_table_is_the_ihd_agent_partition():
    board = defs.load("ihd-esp32")
    agent = defs.partition(board, "agent")
    parsed = ptable.parse(table_bin(STOCK_4MIB), 0)
    assert ptable.runtime_vfs(parsed, board["flash_size"]) == (agent["offset"], agent["size"])
    assert agent["table"] is False


def test_runtime_vfs_is_not_made_when_the_table_has_vfs_or_ffat():
    for label in ("vfs", "ffat"):
        rows = STOCK_4MIB + [(label, "data", "fat", 0x310000, 0x10000)]
        assert ptable.runtime_vfs(ptable.parse(table_bin(rows), 0), 0x400000) is None
    full = STOCK_4MIB[:4] + [("ota_1", "app", "ota_1", 0x190000, 0x270000)]  # to 4 MB exactly
    assert ptable.runtime_vfs(ptable.parse(table_bin(full), 0), 0x400000) is None


def test_the_sim_lays_out_the_real_boards_table():
    ihd = partition_table(defs.load("ihd-esp32"))
    assert ihd == table_bin(STOCK_4MIB)  # runtime vfs left out, as on the board
    assert hashlib.md5(ihd[:160]).hexdigest() == MD5_4MIB_OTA
    s3 = table_bin(csv_rows((ROOT / "boards/ppmid-esp32s3/partitions.csv").read_text()))
    for name in ("ppmid-esp32s3", "ppmid-esp32s3-prod", "sim-ppmid", "sim-ihd"):
        assert partition_table(defs.load(name)) == s3, name


@pytest.mark.parametrize("chip", ["esp32", "esp32s3"])
def test_esptool_app_image_passes_image_info_and_the_port_check(vec, chip):
    tmp, images = vec
    app = images[chip][1]
    report = image_info(tmp, app, chip)
    assert "rc=0" in report and "Checksum:" in report and "invalid" not in report, report
    assert "Validation hash:" in report and "App version: \n" in report  # stock: empty
    got = ei.check_app(reader(app), len(app), chip, 0x180000)
    assert got == (ei.CHIP_IDS[chip], 2, "", "micropython")
    boot = images[chip][0]
    assert "Bootloader Information" in image_info(tmp, boot, chip)
    with pytest.raises(ei.EspImageError, match="NOT_APP"):
        ei.check_app(reader(boot), len(boot), chip, 0x180000)


def reader(data: bytes):
    def read(off: int, buf) -> None:
        buf[:] = data[off : off + len(buf)].ljust(len(buf), b"\xff")

    return read


def _flip(at):
    def corrupt(app: bytes) -> bytes:
        pos = at(app)
        return app[:pos] + bytes([app[pos] ^ 0x01]) + app[pos + 1 :]

    return corrupt


@pytest.mark.parametrize(
    "corrupt",
    [
        _flip(lambda a: 0x400),  # a byte of the flash-mapped segment
        _flip(lambda a: len(a) - 33),  # the XOR checksum byte
        _flip(lambda a: len(a) - 1),  # the appended SHA-256
        lambda a: a[:-40],  # cut short
    ],
    ids=["segment", "checksum", "sha256", "truncated"],
)
def test_esptool_and_the_port_refuse_the_same_corrupted_apps(vec, corrupt):
    tmp, images = vec
    bad = corrupt(images["esp32"][1])
    report = image_info(tmp, bad)
    assert "invalid" in report or "rc=0" not in report, report  # esptool's verdict
    with pytest.raises(ei.EspImageError) as exc:
        ei.check_app(reader(bad), len(bad), "esp32", 0x180000)
    assert exc.value.code in ("BAD_HASH", "TRUNCATED")


def release_bin(vec, chip: str, rows=None, app: bytes | None = None) -> Path:
    tmp, images = vec
    boot, good = images[chip]
    table = table_bin(rows if rows is not None else STOCK_4MIB)
    data = merge_bin(tmp, chip, boot, table, app if app is not None else good)
    path = tmp / f"release-{chip}-{hashlib.sha256(data).hexdigest()[:8]}.bin"
    path.write_bytes(data)
    return path


def board_flash(firmware: Path, board: str = "ihd-esp32") -> subprocess.CompletedProcess:
    return subprocess.run(
        [HANOTA, "board", "flash", "--board", board, "--port", "/dev/ttyUSB0",
         "--firmware", str(firmware), "--dry-run"],
        capture_output=True, text=True, cwd="/",
    )  # fmt: skip


def test_release_like_bin_from_merge_bin_is_accepted_by_board_flash(vec):
    """DONE WHEN: a stock-shaped v1.28 release .bin (esptool merge-bin, no vfs row) flashes."""
    fw = release_bin(vec, "esp32")
    assert fw.read_bytes()[0x7000 : 0x7000 + 0xC00] == table_bin(STOCK_4MIB)  # table at 0x8000
    res = board_flash(fw)
    assert res.returncode == 0, res.stderr
    efuse, esptool = res.stdout.splitlines()[:2]
    assert efuse.split()[0].endswith("espefuse") and "summary FLASH_CRYPT_CNT" in efuse
    assert esptool.split()[0].endswith("esptool")
    assert esptool.split()[1:] == ["--chip", "esp32", "--port", "/dev/ttyUSB0", "--baud",
                                   "460800", "write-flash", "--erase-all", "0x1000", str(fw)]  # fmt: skip
    facts = flash.check_firmware(defs.load("ihd-esp32"), fw)
    assert facts["runtime_vfs"] == [0x310000, 0xF0000] and facts["app_project"] == "micropython"


def test_s3_custom_build_from_merge_bin_is_accepted(vec):
    rows = csv_rows((ROOT / "boards/ppmid-esp32s3/partitions.csv").read_text())
    res = board_flash(release_bin(vec, "esp32s3", rows=rows), "ppmid-esp32s3")
    assert res.returncode == 0, res.stderr
    assert " write-flash --erase-all 0x0 " in res.stdout.splitlines()[1]


@pytest.mark.parametrize(
    "make,needle",
    [
        (lambda v: release_bin(v, "esp32", rows=STOCK_4MIB[:3] + [
            ("ota_0", "app", "ota_0", 0x10000, 0x1C0000),
            ("ota_1", "app", "ota_1", 0x1D0000, 0x1C0000)]),
         "MicroPython would make 'vfs' at 0x390000+0x70000"),
        (lambda v: release_bin(v, "esp32", rows=STOCK_4MIB + [("vfs", "data", "fat", 0x310000, 0xF0000)]),
         "has a 'vfs' partition in its table"),
        (lambda v: release_bin(v, "esp32s3"), "is for esp32s3, board 'ihd-esp32' is esp32"),
        (lambda v: v[0] / "app-esp32.bin", "is an app-only image (an OTA payload)"),
        (lambda v: release_bin(v, "esp32", app=_flip(lambda a: 0x400)(v[1]["esp32"][1])),
         "the app at 0x10000 is refused: BAD_HASH"),
    ],
    ids=["vfs-elsewhere", "vfs-row", "wrong-chip", "app-only", "corrupt-app"],
)  # fmt: skip
def test_board_flash_refuses_esptool_made_bins_with_a_clear_message(vec, make, needle):
    res = board_flash(make(vec))
    assert res.returncode == 2, res.stdout
    assert needle in res.stderr, res.stderr
    assert "espefuse" not in res.stdout and "write-flash" not in res.stdout
