# ppmid-esp32s3 as an out-of-tree MicroPython v1.28.0 board (make BOARD_DIR=<this folder>):
# ESP32_GENERIC_S3's settings plus sdkconfig.board here (8 MB flash, hanota's table, the
# app version kept in esp_app_desc_t) and the agent frozen in (manifest.py here).
set(IDF_TARGET esp32s3)

set(SDKCONFIG_DEFAULTS
    boards/sdkconfig.base
    boards/sdkconfig.ble
    boards/sdkconfig.spiram_sx
    ${MICROPY_BOARD_DIR}/sdkconfig.board
)

set(MICROPY_FROZEN_MANIFEST ${MICROPY_BOARD_DIR}/manifest.py)
