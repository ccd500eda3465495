// ppmid-esp32s3-prod: console off (R4). MicroPython v1.28.0 has three REPL doors on an
// ESP32-S3 and each is closed here (ports/esp32/mpconfigport.h, main.c, mphalport.c):
#define MICROPY_HW_BOARD_NAME               "hanota PPMID (ESP32-S3, production)"
#define MICROPY_HW_MCU_NAME                 "ESP32S3"

// 1. UART0 REPL (uart_stdout_init in mp_task).
#define MICROPY_HW_ENABLE_UART_REPL         (0)
// 2. Native USB (TinyUSB CDC): off, and no USB device stack at all.
#define MICROPY_HW_ENABLE_USBDEV            (0)
#define MICROPY_HW_USB_CDC                  (0)
// 3. USB-Serial/JTAG: mpconfigport.h turns it ON whenever CDC is off
//    (SOC_USB_SERIAL_JTAG_SUPPORTED && !MICROPY_HW_USB_CDC), so CDC (0) alone would only
//    move the REPL there. Off explicitly.
#define MICROPY_HW_ESP_USB_SERIAL_JTAG      (0)

#define MICROPY_HW_I2C0_SCL                 (9)
#define MICROPY_HW_I2C0_SDA                 (8)
