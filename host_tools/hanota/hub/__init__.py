"""The Comms Hub emulator: ZCL OTA server per device link, submissions, inventory, alerts.

`Hub` (core.py) is the in-process Python API; `hanota hub ...` (cli.py) drives it
directly or through a running `hanota hub serve` (control.py).
"""

from __future__ import annotations

from .core import Hub, HubConfig, HubError

__all__ = ["Hub", "HubConfig", "HubError"]
