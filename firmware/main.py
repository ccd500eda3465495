"""Boot entry of the agent app: board config -> port (ports.make_port) -> OTA agent, forever.

A crash anywhere in the agent is logged and the agent restarted after a back-off, so the
device keeps answering the CH; a trial boot is confirmed only by the agent's self-test.
"""

import time


def _port():
    # No port, no agent: retry slowly (a board without its config stays reachable by REPL).
    delay = 1000
    while True:
        try:
            from ports import make_port

            return make_port()
        except Exception as e:  # top level: never give up on the board
            print("main: no port: %r; retry in %d ms" % (e, delay))
            time.sleep_ms(delay) if hasattr(time, "sleep_ms") else time.sleep(delay / 1000)
            delay = min(delay * 2, 60000)


def main():
    port = _port()
    if port.pending_verify():
        # a trial boot: from here a hang or a crash before the agent's loop ends in a reset,
        # and the bootloader rolls back (stock MicroPython drops to the REPL and never
        # resets by itself). Armed for good: the agent's loop feeds it while it runs.
        port.watchdog(port.board.get("watchdog_ms", 60000))
    from otaclient import image, reassembly

    # long-lived buffers (the inflater's, the write buffer) first, while the heap has big holes
    image.prepare()
    reassembly.prepare(port.block_size)
    from otaclient import agent

    agent.main(port)


main()
