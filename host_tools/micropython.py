"""CPython's stand-in for MicroPython's built-in `micropython` module (host tools, tests).

Firmware modules say `from micropython import const` as MicroPython code does. On a
board, and under the unix port, the built-in module always wins: MicroPython never
imports this file. Under CPython it supplies the one name the firmware uses.
"""


def const(x):
    return x
