"""Live-heap report on the console (agent_config.json "heap_report": true), for rigs.

QUALITY.md's measure: `gc.mem_alloc()` right after `gc.collect()` at every block and
fragment boundary. Prints `heap: idle=<bytes>` once the agent is up and idle, and
`heap: peak=<bytes> idle=<bytes>` after each fragment (peak since that idle). Costs a
collection per block: leave it off on boards in the field. Module state and plain
functions, no class or instance: the instrument should weigh little in what it measures.
"""

import gc

_log = None
_idle = _peak = 0


def attach(client, log):
    """Report the client's boundaries through log(text); start() once the agent idles."""
    global _log
    _log = log
    client.on_boundary = _boundary
    client.on_fragment = _fragment


def start():
    global _idle, _peak
    _idle = _peak = _live()
    _log("heap: idle=%d" % _idle)


def _boundary(_client):
    global _peak
    m = _live()
    if m > _peak:
        _peak = m


def _fragment(_client):
    _log("heap: peak=%d idle=%d" % (_peak, _idle))


def _live():
    gc.collect()
    return gc.mem_alloc() if hasattr(gc, "mem_alloc") else 0  # CPython has no mem_alloc
