"""ZigBee time for the hub: UTC seconds since 2000-01-01, and the upgrade time that holds.

Two constants and the clock read; imports nothing of the hub, so every module of it may
use these. Parsing a supplier's activation time is core.parse_activate's (its errors are
the Python API's HubError).
"""

from __future__ import annotations

import time

ZB_EPOCH = 946684800  # 2000-01-01T00:00:00Z in Unix seconds
# Upgrade End Response upgrade time "wait": the device holds the image until it is sent
# a time (activate_at "hold", until `hanota hub activate`)
HOLD = 0xFFFFFFFF


def zb_now() -> int:
    """ZigBee UTC seconds (since 2000-01-01)."""
    return int(time.time()) - ZB_EPOCH
