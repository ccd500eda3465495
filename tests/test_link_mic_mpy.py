"""The CH link key under the real MicroPython (fake board, sealing CH double; 256k as in
test_agent_micropython.py, bytecode in the heap; 64k is tried on sim boards, test_agent_sim.py):
a keyed board updates through sealed commands; forged Image Notify, Upgrade End Response
and ALERT_ACK "from the CH" (no MIC, or a MIC under another key) and a replayed sealed
frame change nothing."""

from __future__ import annotations

import json
from pathlib import Path

import agent_util as U
import pytest
from fakes import fake_app
from hanota.bench.mpy import compiled
from mpy_agent import run_script, write_inputs
from sealing_double import KEY

pytestmark = pytest.mark.micropython
TESTS = Path(__file__).parent
V2 = 0x01000100

_SCRIPT = """
import json
import harness
from sealing_double import SealingDouble
from otaclient import link, zcl
cfg = json.loads(open(%(cfg)r).read())
store = {}
for name in cfg["store"]:
    store[name] = open(cfg["dir"] + "/" + name, "rb").read()
port, _plain = harness.make(cfg["dir"], cfg["files"], store)
port.oplog = None
dbl = SealingDouble(cfg["files"])
dbl.clock = lambda: port.clock
dbl.ack_alerts = False
port.link.peer = dbl
res = {}
def inject(a, frame):
    port.link.down.append((port.clock, frame))
    a.step()
def forged(cmd, p, mfr, key):
    z = zcl.encode_frame(cmd, 77, p, True, mfr)
    if key is not None:
        z = link.seal(link.pads(key), b"\\x01" * 8, 0, 1, 1, z)
    return link.encode(0, 1, 9, z)
dbl.upgrade_time = 0xFFFFFFFF  # held: the board waits, as a forged "activate now" would end
a = harness.run(port, lambda a: a.client.st == 4)
end = zcl.encode_upgrade_end_rsp(cfg["mfr"], cfg["itype"], cfg["v2"], 0, 0)
for key in (None, bytes(16)):
    inject(a, forged(zcl.UPGRADE_END_RSP, end, None, key))
    inject(a, forged(zcl.IMAGE_NOTIFY, zcl.encode_image_notify(0, 100), None, key))
for i in range(20):
    a.step()
res["after_forged_end"] = [a.client.st, port.pending, port.running_version(), a.refused]
dbl.upgrade_time = 0
a = harness.run(port, lambda a: port.running_version() == cfg["v2"] and len(a.state.get("alerts", [])) == 2)
before = port.store.get("agent.json")
for r in a.state.get("alerts", []):
    for key in (None, bytes(16)):
        inject(a, forged(zcl.ALERT_ACK, zcl.encode_alert_ack(r[4]), zcl.MFR_HANOTA, key))
res["after_forged_acks"] = [len(a.state.get("alerts", [])), port.store.get("agent.json") == before]
res["refused_forged"] = a.refused
genuine = dbl.frame(zcl.ALERT_ACK, zcl.encode_alert_ack(a.state.get("alerts")[0][4]), zcl.MFR_HANOTA)
inject(a, genuine)
res["after_genuine_ack"] = len(a.state.get("alerts", []))
inject(a, genuine)  # replayed
res["refused_replay"] = a.refused
dbl.ack_alerts = True
a = harness.run(port, lambda a: not a.state.get("alerts"), 3600000, None, None, a)
res["boots"] = [b[0] for b in port.boots]
res["logs"] = [m for m in port.logs if "refused" in m or "WARNING" in m]
print("RESULT " + json.dumps(res))
"""


def _run(tmp: Path) -> dict:
    files = U.images(fake_app(V2, 40_000), V2)
    store = U.store()
    ident = json.loads(store["identity.json"])
    ident["link_key"] = KEY.hex()
    store["identity.json"] = json.dumps(ident).encode()
    tmp.mkdir()
    paths = write_inputs(tmp, {"f": files}, store)["f"]
    cfg = {"dir": str(tmp), "files": paths, "store": list(store),
           "mfr": U.MFR, "itype": U.ITYPE, "v2": V2}  # fmt: skip
    (tmp / "cfg.json").write_text(json.dumps(cfg))
    # the scenario precompiled too: no compiler heap beside the agent's
    (tmp / "micscenario.py").write_text(_SCRIPT % {"cfg": str(tmp / "cfg.json")})
    names = ("fakes.py", "harness.py", "ota_double.py", "sealing_double.py")
    mods = compiled(tmp / "mpy", [*(TESTS / n for n in names), tmp / "micscenario.py"])
    return run_script(tmp, "import micscenario\n", mods, "256k", 300)


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("mic") / "keyed")


def test_forged_commands_change_nothing_under_micropython(keyed):
    assert keyed["after_forged_end"] == [4, False, U.V1, 4]  # still waiting, nothing armed
    assert keyed["after_forged_acks"] == [2, True]  # no alert deleted, agent.json as it was
    assert keyed["refused_forged"] == 4  # the acks, refused by the agent of the new boot


def test_replayed_ack_is_refused_and_the_update_completes_under_micropython(keyed):
    assert keyed["after_genuine_ack"] == 1 and keyed["refused_replay"] == 5
    assert any("refused (replayed)" in m for m in keyed["logs"])
    assert sum("refused (bad MIC)" in m for m in keyed["logs"]) == 8
    assert keyed["boots"] == ["reset", "trial"]  # activated, confirmed, alerts acked
    assert not [m for m in keyed["logs"] if "WARNING" in m]
