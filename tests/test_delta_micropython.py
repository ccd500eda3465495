"""A delta update through the whole agent under the real MicroPython (fake board, CH double):
the live heap above idle at every block boundary, against a full update of the same target."""

from __future__ import annotations

import json
import struct

import agent_util as U
import pytest
from fakes import fake_app
from hanota.image import delta as hd
from hanota.image.build import Target, build
from mpy_agent import _SCRIPT, compiled_fixtures, run_script, write_inputs

pytestmark = pytest.mark.micropython
V1, V2 = 0x01000000, 0x01000100

# after the board is made: its running slot gets the base, 4 KB at a time (a 64 KB heap)
_LOAD_BASE = """port.oplog = None
with open(cfg["base"], "rb") as src:
    dst = port.slots[0].f
    dst.seek(0)
    chunk = bytearray(4096)
    while True:
        k = src.readinto(chunk)
        if not k:
            break
        dst.write(memoryview(chunk)[:k])
"""


def _run(tmp, files, base):
    paths = write_inputs(tmp, {"f": files}, U.store())["f"]
    (tmp / "base.bin").write_bytes(base)
    cfg = {"dir": str(tmp), "files": paths, "store": list(U.store()), "slot": 1 << 20,
           "baud": None, "latency": 0.0, "measure": True, "target": V2, "cuts": [],
           "limit_ms": 3_600_000, "boots": 0, "base": str(tmp / "base.bin")}  # fmt: skip
    (tmp / "cfg.json").write_text(json.dumps(cfg))
    code = _SCRIPT % {"cfg": str(tmp / "cfg.json")}
    assert "port.oplog = None\n" in code
    code = code.replace("port.oplog = None\n", _LOAD_BASE)
    return run_script(tmp, code, compiled_fixtures(tmp / "mpy"), "256k", 600)


def test_delta_update_heap_above_idle_is_bounded_like_a_full_one(tmp_path):
    base = fake_app(V1, 400_000)
    target = bytearray(base)
    struct.pack_into("<I", target, 4, V2)
    for at in range(3000, len(target), 7919):
        target[at : at + 2] = b"\x00\x01"
    target = bytes(target)
    t = Target(U.MFR, U.ITYPE, V2, U.HW, U.HW, 0)
    delta_files = [d for _n, d in build(hd.make(base, target, V1), t, U.mkey(), compress=True,
                                        delta=True)]  # fmt: skip
    full_files = [d for _n, d in build(target, t, U.mkey(), compress=True)]
    (tmp_path / "d").mkdir()
    (tmp_path / "f").mkdir()
    d = _run(tmp_path / "d", delta_files, base)
    f = _run(tmp_path / "f", full_files, base)
    assert d["boundaries"] and d["alerts"] and f["alerts"]
    dd, df = d["peak"] - d["idle"], f["peak"] - f["idle"]
    print(f"heap above idle: delta {dd} B, full {df} B (idle {d['idle']} / {f['idle']})")
    assert dd <= 16384, d
    # the applier module (~2.8 KB of functions) with its buffer, masks and ints, no more
    assert dd <= df + 5120, (dd, df)
