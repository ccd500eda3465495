"""The S3 boards' MicroPython build recipe (boards/ppmid-esp32s3/BUILD.md and micropython/*):
what MicroPython v1.28.0 and ESP-IDF v5.5.1 need, checked as text (no ESP-IDF here)."""

from __future__ import annotations

import re

from hanota.paths import ROOT

S3 = ROOT / "boards" / "ppmid-esp32s3"


def macros(board: str) -> dict[str, str]:
    text = (S3 / "micropython" / board / "mpconfigboard.h").read_text()
    return dict(re.findall(r"#define\s+(MICROPY_\w+)\s+\(?([^)\s]+)\)?", text))


def test_production_build_closes_every_repl_door():
    m = macros("HANOTA_PPMID_S3_PROD")
    for name in ("MICROPY_HW_ENABLE_UART_REPL", "MICROPY_HW_USB_CDC",
                 "MICROPY_HW_ESP_USB_SERIAL_JTAG", "MICROPY_HW_ENABLE_USBDEV"):  # fmt: skip
        assert m.get(name) == "0", name  # CDC off alone moves the REPL to USB-Serial/JTAG


def test_development_build_keeps_the_uart_repl():
    assert macros("HANOTA_PPMID_S3")["MICROPY_HW_ENABLE_UART_REPL"] == "1"


def test_sdkconfig_keeps_the_version_and_sizes_flash_for_the_table():
    for board in ("HANOTA_PPMID_S3", "HANOTA_PPMID_S3_PROD"):
        cfg = (S3 / "micropython" / board / "sdkconfig.board").read_text()
        assert "CONFIG_APP_EXCLUDE_PROJECT_VER_VAR=n" in cfg
        assert "CONFIG_ESPTOOLPY_FLASHSIZE_8MB=y" in cfg
        assert 'CONFIG_PARTITION_TABLE_CUSTOM_FILENAME="partitions-hanota-ppmid-s3.csv"' in cfg
        cmake = (S3 / "micropython" / board / "mpconfigboard.cmake").read_text()
        assert "sdkconfig.usb" not in cmake  # removed from MicroPython in v1.27
        assert "${MICROPY_BOARD_DIR}/sdkconfig.board" in cmake


def test_recipe_uses_idf_v5_5_1_and_passes_project_ver_through_the_environment():
    text = (S3 / "BUILD.md").read_text()
    assert "git clone -b v5.5.1" in text and "v5.4" not in text
    assert 'IDFPY_FLAGS="-D PROJECT_VER=0x01000000" make BOARD_DIR=' in text
    assert "sdkconfig.usb" not in text.replace("`sdkconfig.usb`", "")
    assert "make BOARD=HANOTA_PPMID_S3 \\" not in text  # the old PROJECT_VER=... make line


def test_manifest_freezes_the_esp32_port_files_that_exist():
    text = (S3 / "micropython" / "HANOTA_PPMID_S3" / "manifest.py").read_text()
    files = re.search(r"files=\(([^)]*)\)", text).group(1)
    for name in re.findall(r'"([\w.]+)"', files):
        assert (ROOT / "firmware" / "ports" / name).is_file(), name
    assert (ROOT / "firmware" / "main.py").is_file()
