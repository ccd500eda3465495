"""Live-heap report on the console (agent_config.json "heap_report": true), for rigs.

QUALITY.md's measure: `gc.mem_alloc()` right after `gc.collect()` at every block and
fragment boundary. Prints `heap: idle=<bytes>` once the agent is up and idle, and
`heap: peak=<bytes> idle=<bytes>` after each fragment (peak since that idle). Costs a
collection per block: leave it off on boards in the field.
"""

import gc


class HeapReport:
    def __init__(self, client, log):
        self._log = log
        self.idle = self.peak = 0
        client.on_boundary = self._boundary
        client.on_fragment = self._fragment

    def start(self):
        self.idle = self.peak = _live()
        self._log("heap: idle=%d" % self.idle)

    def _boundary(self, _client):
        m = _live()
        if m > self.peak:
            self.peak = m

    def _fragment(self, _client):
        self._log("heap: peak=%d idle=%d" % (self.peak, self.idle))


def _live():
    gc.collect()
    return gc.mem_alloc() if hasattr(gc, "mem_alloc") else 0  # CPython has no mem_alloc
