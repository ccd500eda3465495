"""Flash encryption is refused before anything is written: the eFuse summary comes from
espefuse 5.6.0 itself, run in its virtual mode (`--virt --path-efuse-file`, no chip), with
the counters burnt there as a chip would have them. No physical board is involved."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hanota.board import actions, defs, flash
from hanota.board.options import FlashOptions, IdentityOptions, ProvisionOptions
from hanota.output import CommandError
from vectors_esp import ESPEFUSE


def virt(chip: str, efuses: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [ESPEFUSE, "--virt", "--path-efuse-file", str(efuses), "--chip", chip, *args]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    return res


def summary(tmp: Path, chip: str, burns: list[int]) -> dict:
    """espefuse's JSON summary of the counter after burning each value in `burns` (eFuse bits
    only ever go from 0 to 1: burning 1 then 3 leaves 0b11)."""
    efuses = tmp / f"{chip}-efuses.bin"
    name = flash.CRYPT_CNT[chip]
    for value in burns:
        virt(chip, efuses, "--do-not-confirm", "burn-efuse", name, str(value))
    out = tmp / f"{chip}-summary.json"
    virt(chip, efuses, "summary", name, "--format", "json", "--file", str(out))
    return json.loads(out.read_text())


@pytest.mark.parametrize(
    "board,burns,bits",
    [
        ("ihd-esp32", [], 0),
        ("ihd-esp32", [1], 1),
        ("ihd-esp32", [1, 3], 2),  # re-disabled: an even count
        ("ihd-esp32", [1, 3, 7], 3),
        ("ppmid-esp32s3", [], 0),
        ("ppmid-esp32s3", [1], 1),
        ("ppmid-esp32s3", [1, 3], 2),
    ],
)
def test_counter_bits_from_espefuse_summary(tmp_path, board, burns, bits):
    b = defs.load(board)
    doc = summary(tmp_path, b["chip"], burns)
    assert flash.encryption_count(b, doc) == bits
    if bits % 2:
        with pytest.raises(CommandError) as exc:
            flash.refuse_encryption(b, doc)
        assert "flash encryption on" in str(exc.value) and "16-byte aligned" in str(exc.value)
        assert f"{flash.CRYPT_CNT[b['chip']]} has {bits} bits set" in str(exc.value)
    else:
        flash.refuse_encryption(b, doc)


def test_s3_summary_value_is_a_word_so_the_raw_bits_are_counted(tmp_path):
    doc = summary(tmp_path, "esp32s3", [1])
    assert doc["SPI_BOOT_CRYPT_CNT"]["value"] == "Enable"  # espefuse's meaning, not a count
    assert doc["SPI_BOOT_CRYPT_CNT"]["raw_value"] == "0x1"


@pytest.mark.parametrize(
    "doc",
    [{}, {"FLASH_CRYPT_CNT": {"readable": False, "raw_value": "0x00", "value": "?"}},
     {"FLASH_CRYPT_CNT": {"readable": True, "raw_value": "zz"}}],
    ids=["missing", "unreadable", "garbage"],
)  # fmt: skip
def test_an_unreadable_counter_is_refused(doc):
    with pytest.raises(CommandError, match="FLASH_CRYPT_CNT"):
        flash.refuse_encryption(defs.load("ihd-esp32"), doc)


def virtual_espefuse(monkeypatch, tmp: Path, chip: str, burns: list[int]) -> list[list[str]]:
    """flash.espefuse_cmd's real command line with `--port P` swapped for a virtual chip."""
    efuses = tmp / f"{chip}-efuses.bin"
    for value in burns:
        virt(chip, efuses, "--do-not-confirm", "burn-efuse", flash.CRYPT_CNT[chip], str(value))
    real = flash.espefuse_cmd
    ran: list[list[str]] = []

    def cmd(board, port):
        argv = real(board, port)
        i = argv.index("--port")
        ran.append(argv)
        return argv[:i] + ["--virt", "--path-efuse-file", str(efuses)] + argv[i + 2 :]

    monkeypatch.setattr(flash, "espefuse_cmd", cmd)
    monkeypatch.setattr(flash, "efuse_file", lambda port: tmp / "summary.json")
    return ran


def test_check_encryption_runs_espefuse_and_passes_a_plain_chip(tmp_path, monkeypatch):
    ran = virtual_espefuse(monkeypatch, tmp_path, "esp32", [1, 3])
    assert flash.check_encryption(defs.load("ihd-esp32"), "/dev/ttyUSB0") == 2
    assert ran[0][ran[0].index("summary") + 1] == "FLASH_CRYPT_CNT"
    assert json.loads((tmp_path / "summary.json").read_text())["FLASH_CRYPT_CNT"]["value"] == 3


def test_check_encryption_refuses_an_encrypted_chip(tmp_path, monkeypatch):
    virtual_espefuse(monkeypatch, tmp_path, "esp32s3", [1])
    with pytest.raises(CommandError, match="flash encryption on"):
        flash.check_encryption(defs.load("ppmid-esp32s3"), "/dev/ttyACM0")


def test_espefuse_failure_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(flash, "efuse_file", lambda port: tmp_path / "never.json")
    monkeypatch.setattr(flash, "espefuse_cmd", lambda b, p: [ESPEFUSE, "--chip", "esp32", "--port",
                        str(tmp_path / "nope"), "--connect-attempts", "1", "summary"])  # fmt: skip
    with pytest.raises(CommandError, match="espefuse could not read the eFuses"):
        flash.check_encryption(defs.load("ihd-esp32"), str(tmp_path / "nope"))


def test_flash_refuses_an_encrypted_board_before_esptool_runs(tmp_path, monkeypatch):
    virtual_espefuse(monkeypatch, tmp_path, "esp32", [1])
    monkeypatch.setattr(flash, "check_firmware", lambda b, p: {"chip": b["chip"]})
    monkeypatch.setattr(flash, "check_port", lambda p: None)
    ran = tmp_path / "esptool-ran"
    monkeypatch.setattr(flash, "esptool_cmd", lambda *a: [sys.executable, "-c", f"open({str(ran)!r}, 'w')"])  # fmt: skip
    opts = FlashOptions(
        IdentityOptions(seed="enc", record=tmp_path / "rec.json"), port="/dev/ttyUSB0",
        firmware=tmp_path / "fw.bin",
    )  # fmt: skip
    with pytest.raises(CommandError, match="flash encryption on"):
        actions.flash_real(defs.load("ihd-esp32"), opts)
    assert not ran.exists() and not (tmp_path / "rec.json").exists()


def test_provision_over_the_port_refuses_an_encrypted_board(tmp_path, monkeypatch):
    virtual_espefuse(monkeypatch, tmp_path, "esp32", [1])
    monkeypatch.setattr(flash, "check_port", lambda p: None)
    monkeypatch.setattr(actions, "push_store", lambda *a: pytest.fail("nothing may be written"))
    opts = ProvisionOptions(IdentityOptions(seed="enc"), port="/dev/ttyUSB0")
    with pytest.raises(CommandError, match="flash encryption on"):
        actions.provision_to(defs.load("ihd-esp32"), opts)
