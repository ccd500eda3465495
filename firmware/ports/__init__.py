"""Board ports: make_port() picks the one for the platform MicroPython runs on.

Each port implements the contract in docs/architecture.md; the core sees nothing else.
"""

import sys


def make_port():
    if sys.platform == "esp32":
        from ports.esp32 import Port
    else:  # "linux", "darwin": the simulated board under the MicroPython unix port
        from ports.unix import Port
    return Port()
