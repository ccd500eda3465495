# ruff: noqa: UP031  (runs under MicroPython too: %-formatting, no f-strings)
"""Run the real agent on the fake board against the CH double, through reboots and power cuts.

CPython and MicroPython. The fake bootloader (FakePort.reboot) decides what boots; an app
flagged 'crash' never reaches the agent, as a new app dying on its first line.
"""

from fakes import FakeLink, FakePort, PowerCut, Reset
from ota_double import OtaDouble

BOARD = {"name": "fake", "manufacturer_code": 0x1234, "image_type": 0x84, "hw_version": 0x0100}


def make(tmpdir, files, store, slot_size=1 << 20, baud=None, latency_ms=0.0, factory=None):
    """(port, double): a provisioned fake board wired to a double serving `files`."""
    port = FakePort(BOARD, store, tmpdir, slot_size, factory)
    double = OtaDouble(files)
    double.clock = lambda: port.clock  # the CH's currentTime runs on with the board's time
    port.link = FakeLink(port, double, baud, latency_ms)
    return port, double


def _restart(port, why):
    port.link.up = []
    port.link.down = []
    port.link.up_free = port.link.down_free = port.clock
    port.boots.append((why, None))
    port.reboot()


def run(port, until, limit_ms=3600000, cuts=None, on_agent=None, agent=None):
    """Boot and step the agent until until(agent); reboots on reset, crash and power cut.

    cuts: list of flash-operation indexes at which power is cut, in increasing order.
    Pass the returned agent back in to go on without a reboot.
    """
    from otaclient.agent import Agent

    cuts = list(cuts or [])
    end = port.clock + limit_ms
    while port.clock < end:
        if port.cut_at is None and cuts:
            port.cut_at = cuts.pop(0)
        try:
            if agent is None:
                if port.app_crashes():
                    _restart(port, "crash")  # the watchdog resets the dead trial app
                    continue
                agent = Agent(port)
                agent.boot()
                if on_agent:
                    on_agent(agent)
            agent.step()
        except Reset:
            _restart(port, "reset")
            agent = None
            continue
        except PowerCut:
            _restart(port, "cut")
            agent = None
            continue
        if until(agent):
            return agent
    raise AssertionError(
        "harness: timeout at %d ms, state %r" % (port.clock, agent and agent.client.st)
    )
