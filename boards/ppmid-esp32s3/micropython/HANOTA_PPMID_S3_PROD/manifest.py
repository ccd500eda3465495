# ruff: noqa: F821  (a MicroPython manifest: include is its built-in)
# The same frozen set as the development board: MicroPython's own modules plus the agent.
include("$(BOARD_DIR)/../HANOTA_PPMID_S3/manifest.py")
