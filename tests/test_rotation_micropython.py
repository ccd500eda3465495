"""Key rotation under a rotation authority through the real MicroPython interpreter (unix port).

The scenarios of tests/test_rotation.py, run by the precompiled agent on the fake board
against the CH double (the harness of tests/test_agent_policies_micropython.py).
"""

from __future__ import annotations

import json

import agent_util as U
import pytest
from fakes import fake_app
from hanota.image.keys import generate
from otaclient import zcl
from test_agent_policies_micropython import _alerts, _refusals, _untouched, mpy_mods, scenario
from test_rotation import ADD_ANCHOR, REVOKE_ANCHOR, pub, rot, store

pytestmark = pytest.mark.micropython
__all__ = ["mpy_mods", "scenario"]  # fixtures used here by name

V2, V3 = 0x01000100, 0x01000200
SUCCESS, INVALID, MORE = zcl.SUCCESS, zcl.INVALID_IMAGE, zcl.REQUIRE_MORE_IMAGE


def test_rotation_only_by_the_authority_at_the_next_counter_under_micropython(scenario):
    """A build server's anchor signs a key set revoking the root: refused. A key set
    revoking every anchor: refused. The authority's counter-1 set adds a new root and
    revokes the old; a replay of it is not fetched; the old root's image is refused, the
    new root's activates."""
    old, new, build_server = U.mkey(), generate(), generate()
    files = {
        "serve": [
            *rot(1, (ADD_ANCHOR, build_server), (REVOKE_ANCHOR, old), key=build_server),
            *rot(1, (REVOKE_ANCHOR, old), (REVOKE_ANCHOR, build_server)),
            *rot(1, (ADD_ANCHOR, new), (REVOKE_ANCHOR, old)),
            *U.images(fake_app(V2, 20_000), V2, key=old),  # revoked by now
            *U.images(fake_app(V2, 20_000), V2, key=new),
        ],
        "replay": rot(1, (ADD_ANCHOR, new), (REVOKE_ANCHOR, old)),
    }
    st = store(anchors=[old, build_server], extra={"agent_config.json": {"query_interval_s": 20}})
    r = scenario(
        """
        R["s0"] = snap()
        run(idle_after_end(2))
        R["refused"] = snap()
        run(settled(0x01000100))
        R["settled"] = snap()
        serve("replay")
        q = len(sent(Z.QUERY_NEXT_IMAGE_REQ))
        run(lambda a: len(sent(Z.QUERY_NEXT_IMAGE_REQ)) > q and a.client.st == 0)
        """,
        files,
        st,
    )
    assert r["last"]["ends"] == [INVALID, INVALID, SUCCESS, INVALID, SUCCESS]
    assert _refusals(r) == ["NOT_AUTHORITY", "LAST_ANCHOR", "UNKNOWN_KEY"]
    _untouched(r["s0"], r["refused"], "keys")
    assert r["refused"]["keys"] is None
    keys = r["last"]["keys"]
    assert keys["counter"] == 1
    assert keys["anchors"] == {
        U.kid_hex(build_server): pub(build_server).hex(),
        U.kid_hex(new): pub(new).hex(),
    }
    assert r["last"]["running"] == V2
    assert _alerts(r) == [(s, zcl.RESULT_SUCCESS, V2, True) for s in U.SUPPLIERS]
    replay, settled = r["last"], r["settled"]  # not fetched, keys as they were
    assert replay["fetches"] == settled["fetches"] and replay["ends"] == settled["ends"]
    assert any("/ffc0 v00000001" in m and m.endswith("ignored") for m in r["logs"])


def test_staged_fragment_of_a_revoked_key_not_activated_under_micropython(scenario):
    new = generate()
    app = fake_app(V2, 90_000)
    first = U.images(app, V2, max_size=50_000)[0]
    last = U.images(app, V2, key=new, max_size=50_000)[1]
    files = {"serve": [first, *rot(1, (ADD_ANCHOR, new), (REVOKE_ANCHOR, U.mkey())), last]}
    r = scenario(
        """
        def refused(a):
            return any("KEY_REVOKED" in m for m in port.logs) and not a.state.get("alerts")
        run(refused)
        """,
        files,
        store(),
    )
    last_snap = r["last"]
    assert last_snap["ends"] == [MORE, SUCCESS, SUCCESS]
    assert [m for m in r["logs"] if "KEY_REVOKED" in m] == [
        f"ota: activation of {V2:08x} failed: KEY_REVOKED: key {U.kid_hex(U.mkey())} "
        "is no longer a trust anchor"
    ]
    assert last_snap["running"] == U.V1 and not last_snap["pending"] and last_snap["boots"] == 0
    assert last_snap["progress"] is None and last_snap["keys"]["counter"] == 1
    assert _alerts(r) == [(s, zcl.RESULT_FAILURE, U.V1, True) for s in U.SUPPLIERS]
    assert json.dumps(last_snap["agent"].get("failed", [])) == "[]"
