"""Host side of the serial link: transports (pyserial, pty), link profiles and the emulator.

The frame codec itself is the board's (`otaclient.link`); nothing here re-implements it.
"""
