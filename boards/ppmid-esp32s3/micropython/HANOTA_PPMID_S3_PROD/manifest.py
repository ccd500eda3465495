# ruff: noqa: F821  (a MicroPython manifest: include/freeze/package are its built-ins)
# MicroPython's own frozen modules (_boot.py, flashbdev.py, inisetup.py, asyncio, the
# micropython-lib packages the esp32 port requires) plus the hanota agent from this checkout.
include("$(PORT_DIR)/boards/manifest.py")
freeze("$(BOARD_DIR)/../../../../firmware", "main.py")
package("otaclient", base_path="$(BOARD_DIR)/../../../../firmware")
package(
    "ports",
    files=("__init__.py", "esp32.py", "esp32_image.py", "otadata.py", "slot.py", "contract.py"),
    base_path="$(BOARD_DIR)/../../../../firmware",
)
