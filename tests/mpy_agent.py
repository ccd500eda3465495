"""Drive the agent under the real MicroPython (64 KB heap) on the fake board; CPython side."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from hanota.bench.mpy import compiled
from hanota.paths import FIRMWARE, micropython

TESTS = Path(__file__).parent

# The script runs under MicroPython: fakes + double + harness from tests/, files from disk.
_SCRIPT = """
import sys, gc, json, time
import harness
cfg = json.loads(open(%(cfg)r).read())
store = {}
for name in cfg["store"]:
    store[name] = open(cfg["dir"] + "/" + name, "rb").read()
port, dbl = harness.make(cfg["dir"], cfg["files"], store, cfg["slot"], cfg["baud"], cfg["latency"])
port.oplog = None
res = {"idle": 0, "peak": 0, "boundaries": 0}
def boundary(c):
    gc.collect()
    m = gc.mem_alloc()
    res["boundaries"] += 1
    if "activation_loaded" not in res:  # boot code is let go before a transfer
        res["activation_loaded"] = "otaclient.activation" in sys.modules
    # P-256 is loaded per verify and let go after: never held at a block boundary
    res["p256_loaded"] = res.get("p256_loaded", False) or "otaclient.p256" in sys.modules
    q = 0
    for e in port.link.down:
        q += len(e[1]) + 48  # frames still queued in the fake line are not the agent's
    if m - q > res["peak"]:
        res["peak"] = m - q
        res["at"] = [c.st, c.dl.offset if c.dl else -1, len(port.link.down), m]
def on_agent(a):
    if not res["idle"]:
        gc.collect()
        res["idle"] = gc.mem_alloc()
    a.client.on_boundary = boundary if cfg["measure"] else None
t0 = time.ticks_ms()
target = cfg["target"]
def until(a):
    if len(port.boots) < cfg["boots"]:
        return False
    return port.running_version() == target and not a.state.get("alerts")
a = harness.run(port, until, cfg["limit_ms"], cfg["cuts"], on_agent)
res["wall_ms"] = time.ticks_diff(time.ticks_ms(), t0)
res["clock_ms"] = port.clock
res["ops"] = port.ops
res["boots"] = port.boots
res["events"] = dbl.events
res["served"] = dbl.bytes
res["alerts"] = [(x.result, x.version) for x, ok in dbl.alerts]
print("RESULT " + json.dumps(res))
"""


def write_inputs(d: Path, groups: dict[str, list[bytes]], store: dict) -> dict[str, list[str]]:
    """Each group's OTA files as d/<group><i>.zigbee (their paths, in order), and the
    store's files in d."""
    paths: dict[str, list[str]] = {}
    for stem, files in groups.items():
        paths[stem] = []
        for i, data in enumerate(files):
            p = d / f"{stem}{i}.zigbee"
            p.write_bytes(data)
            paths[stem].append(str(p))
    for name, data in store.items():
        (d / name).write_bytes(data)
    return paths


def run_agent_mpy(
    tmp: Path,
    files: list[bytes],
    store: dict,
    target: int,
    *,
    slot: int = 1 << 20,
    baud=None,
    latency: float = 0.0,
    measure: bool = True,
    cuts=(),
    limit_ms: int = 3_600_000,
    boots: int = 0,
    heap: str = "64k",
    timeout: float = 300,
) -> dict:
    """Run one update under MicroPython; returns the script's RESULT dict."""
    paths = write_inputs(tmp, {"f": files}, store)["f"]
    cfg = {
        "dir": str(tmp),
        "files": paths,
        "store": list(store),
        "slot": slot,
        "baud": baud,
        "latency": latency,
        "measure": measure,
        "target": target,
        "cuts": list(cuts),
        "limit_ms": limit_ms,
        "boots": boots,
    }
    (tmp / "cfg.json").write_text(json.dumps(cfg))
    code = _SCRIPT % {"cfg": str(tmp / "cfg.json")}
    return run_script(tmp, code, compiled_fixtures(tmp / "mpy"), heap, timeout)


def compiled_fixtures(out: Path) -> Path:
    """otaclient + fakes/harness/double precompiled into out (as frozen code is on a
    board: no compiler heap in a 64 KB run)."""
    return compiled(out, [TESTS / "fakes.py", TESTS / "harness.py", TESTS / "ota_double.py"])


def run_script(d: Path, code: str, mods: Path, heap: str, timeout: float) -> dict:
    """Run `code` as d/script.py under MicroPython (mods first on its path); the dict of
    the `RESULT {json}` line it prints, else AssertionError with its output."""
    script = d / "script.py"
    script.write_text(code)
    env = dict(os.environ, MICROPYPATH=f"{mods}:{FIRMWARE}:.frozen")
    res = subprocess.run(
        [micropython(), "-X", f"heapsize={heap}", str(script)],
        capture_output=True, text=True, timeout=timeout, env=env, cwd=d,
    )  # fmt: skip
    for line in res.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise AssertionError(
        f"micropython failed ({res.returncode})\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    )
