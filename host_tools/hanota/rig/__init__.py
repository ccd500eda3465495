"""The hardware-in-the-loop rig: pytest plugin, fixtures and `hanota rig`."""
