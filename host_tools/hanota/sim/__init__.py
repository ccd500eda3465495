"""The simulated board: flash file, otadata, app images, bootloader and runner."""
