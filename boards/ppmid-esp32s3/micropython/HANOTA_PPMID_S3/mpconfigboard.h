// ppmid-esp32s3 (development): as ESP32_GENERIC_S3 at v1.28.0, REPL on UART0 and on USB.
#define MICROPY_HW_BOARD_NAME               "hanota PPMID (ESP32-S3)"
#define MICROPY_HW_MCU_NAME                 "ESP32S3"

// UART REPL for modules with an external USB-UART, as ESP32_GENERIC_S3.
#define MICROPY_HW_ENABLE_UART_REPL         (1)

#define MICROPY_HW_I2C0_SCL                 (9)
#define MICROPY_HW_I2C0_SDA                 (8)
