"""The real agent under the MicroPython unix port on the agent tests' fake board, fed by
their in-process CH double with no link limit: ingest time and live heap at boundaries.

Reuses tests/harness.py, fakes.py and ota_double.py (the agent engineer's double);
only the measuring loop is here.
"""

from __future__ import annotations

import json
import struct
import tempfile
from pathlib import Path
from typing import Any

from . import mpy, workload

_DOUBLE = ("harness", "fakes", "ota_double")

# One update: boot, then step the agent until the last fragment is verified in flash
# (Upgrade End Request SUCCESS). With probe, gc.collect(); gc.mem_alloc() at every
# block and fragment boundary (client.on_boundary), minus idle (after boot).
_SCRIPT = """
import gc, json, time
import harness
from otaclient.agent import Agent
from otaclient import image
gc.collect()
image.prepare()

STORE = dict((k, bytes.fromhex(v)) for k, v in json.loads({store!r}).items())
port, double = harness.make({tmp!r}, {files!r}, STORE, slot_size={slot})
port.oplog = None  # the fake's own operation log grows with the image: not the agent's
peer = port.link.peer
spent = [0]
def timed(data):
    t = time.ticks_us()
    out = peer(data)
    spent[0] += time.ticks_diff(time.ticks_us(), t)
    return out
port.link.peer = timed
agent = Agent(port)
agent.boot()
gc.collect()
idle = gc.mem_alloc()
peak = [0, 0, 0]  # raw, net of bytes queued in the fake line, boundaries
frag_peaks = []  # net peak within each fragment (a new offer = a new fragment)
cur = [None]
def probe(c):
    gc.collect()
    raw = gc.mem_alloc() - idle
    q = 0
    for e in port.link.down:
        q += len(e[1]) + 48  # bytes object + list/tuple entry
    net = raw - q
    peak[0] = max(peak[0], raw)
    peak[1] = max(peak[1], net)
    peak[2] += 1
    if c.dl is not None and c.dl.offer is not cur[0]:
        cur[0] = c.dl.offer
        frag_peaks.append(0)
    if frag_peaks:
        frag_peaks[-1] = max(frag_peaks[-1], net)
if {probe}:
    agent.client.on_boundary = probe
t0 = time.ticks_us()
steps = 0
while agent.client.ended is None:
    agent.step()
    steps += 1
    if steps > 5000000:
        raise SystemExit("no end")
us = time.ticks_diff(time.ticks_us(), t0)
print("BENCH " + json.dumps({{"us": us, "double_us": spent[0], "idle": idle,
    "peak_raw": peak[0], "peak_net": peak[1], "boundaries": peak[2],
    "frag_peaks": frag_peaks, "image_bytes": double.bytes, "blocks": double.blocks,
    "ops": port.ops, "heap_total": gc.mem_alloc() + gc.mem_free()}}))
"""


def store_files() -> dict[str, str]:
    """identity.json + trust.json (hex) for the fake board, trusting the bench key."""
    from otaclient import image

    ident = {"eui64": "00124b00a1b2c3d4", "short_addr": 1, "ch_addr": 0,
             "suppliers": ["supplier-a"], "device_key": bytes(range(1, 33)).hex(),
             "board": "fake"}  # fmt: skip
    trust = {f"{image.key_id(workload.pub()):08x}": workload.pub().hex()}
    return {"identity.json": json.dumps(ident).encode().hex(),
            "trust.json": json.dumps(trust).encode().hex()}  # fmt: skip


def fake_firmware(size: int, version: int) -> bytes:
    """A firmware the fake bootloader accepts (tests/fakes.py APP_MAGIC) with realistic bytes."""
    head = b"APP!" + struct.pack("<IB", version, 0)
    return head + workload.firmware(size - len(head))


def update(size: int, *, compress: bool = False, probe: bool = False, heap: str = "64k",
           max_size: int = 750_000) -> dict[str, Any]:  # fmt: skip
    """Run one whole (fragmented) update through the agent; the script's figures."""
    version = 0x01000001
    fw = fake_firmware(size, version)
    files = workload.ota_files(fw, version, compress=compress, max_size=max_size)
    with tempfile.TemporaryDirectory(prefix="hanota-bench-") as tmp:
        paths = [str(p) for p in workload.write_files(Path(tmp), files, "img")]
        slot = (size + 4095) // 4096 * 4096
        code = _SCRIPT.format(store=json.dumps(store_files()), tmp=tmp, files=paths,
                              slot=slot, probe=probe)  # fmt: skip
        compiled = mpy.compiled(Path(tmp) / "mpy", [mpy.TESTS / f"{m}.py" for m in _DOUBLE])
        doc = mpy.run(code, heap=heap, timeout=600, extra_path=[compiled], first=True)[-1]
    doc.update(file_bytes=sum(len(f) for f in files), fragments=len(files), firmware=size)
    return doc
