"""Persisted agent state over port.store: small JSON records, each written in one atomic put.

It only loads and saves; what the fields mean is decided by policy, reassembly and agent.
"""

import json

AGENT = "agent.json"  # counters, activation record, pending alerts, failed versions
PROGRESS = "progress.json"  # fragments of the firmware being staged (reassembly.py)
CONFIG = "agent_config.json"  # tunables (docs/agent.md), optional
CONSENT = "consent.json"  # consumer consent (R6), optional
KEYS = "keys.json"  # the key sets and rotation counter after a key rotation (policy.py)


def load_json(store, name, default=None, strict=False):
    """The decoded record, or `default` when it is missing. Unreadable: `default`, or with
    `strict` (records that hold security state) ValueError "NAME unreadable", never the
    defaults (no exception class of its own: each costs a 64 KB heap a type object)."""
    raw = store.get(name)
    if raw is None:
        return default
    try:
        obj = json.loads(raw)
    except ValueError:
        obj = None
    if isinstance(obj, dict):
        return obj
    if strict:
        raise ValueError(name + " unreadable")
    return default


def save_json(store, name, obj):
    store.put_json(name, obj)  # streamed: no copy of the whole text in RAM


class State:
    """agent.json: sec_counter, floor, alert_counter, activating, alerts, failed, refused.
    An unreadable agent.json is not read as a new board's (floor and counters 0): the
    record starts over with `locked` set, which refuses updates until re-provisioning."""

    def __init__(self, store):
        self.store = store
        try:
            self.data = load_json(store, AGENT, {}, True)
        except ValueError as e:
            self.data = {"locked": str(e)}

    def get(self, key, default=None):
        return self.data.get(key, default)

    def update(self, **fields):
        """Change several fields in one atomic write (None deletes a field)."""
        data = dict(self.data)
        for k in fields:
            if fields[k] is None:
                data.pop(k, None)
            else:
                data[k] = fields[k]
        save_json(self.store, AGENT, data)
        self.data = data
