"""Key rotation under a rotation authority (issue 20 item 3), the real agent under CPython.

Each finding has a test here: a rotation signed by an image-signing anchor (it could
revoke the root), a counter that could be used up (0xFFFFFFFF), a rotation that leaves no
key, a staged image whose key was revoked since. Keys are real P-256 keys (cryptography);
the same scenarios run under MicroPython in tests/test_rotation_micropython.py.
"""

from __future__ import annotations

import json

import agent_util as U
import harness as H
import pytest
from fakes import FakePort, fake_app
from hanota.image import rotation
from hanota.image.keys import generate, raw_public
from otaclient import zcl
from otaclient.imagefmt import Manifest
from otaclient.policy import KEYS_IMAGE_TYPE, Policy, PolicyError

V2 = 0x01000100
ADD_ANCHOR, REVOKE_ANCHOR, ADD_AUTHORITY, REVOKE_AUTHORITY = 1, 2, 3, 4
AUTH = generate()  # the provisioned rotation authority (one per session)


def pub(key) -> bytes:
    return raw_public(key.public_key())


def store(anchors=None, authority=None, extra=None) -> dict:
    """The provisioned store: trust.json (anchors) and authority.json (rotation authority)."""
    d = U.store(extra=extra)
    anchors = [U.mkey()] if anchors is None else anchors
    authority = [AUTH] if authority is None else authority
    d["trust.json"] = json.dumps({U.kid_hex(k): pub(k).hex() for k in anchors}).encode()
    d["authority.json"] = json.dumps({U.kid_hex(k): pub(k).hex() for k in authority}).encode()
    return d


def payload(*recs) -> bytes:
    return rotation.pack([rotation.Record(op, pub(k)) for op, k in recs])


def rot(counter: int, *recs, key=AUTH) -> list[bytes]:
    """A 0xFFC0 file as `hanota image rotation` builds it."""
    _name, data = rotation.build_image(
        rotation.parse(payload(*recs)), counter, key, U.MFR, 0, 0xFFFF
    )
    return [data]


def manifest(counter: int, data: bytes, key) -> Manifest:
    import hashlib

    kid = int(U.kid_hex(key), 16)
    digest = hashlib.sha256(data).digest()
    n = len(data)
    return Manifest(2, U.MFR, KEYS_IMAGE_TYPE, 0, 0xFFFF, counter, 0, kid, n, digest, False,
                    0, 1, 0, n, n, bytes(16))  # fmt: skip


def offer(version: int, itype: int = KEYS_IMAGE_TYPE):
    return zcl.QueryNextImageRsp(0, U.MFR, itype, version, 1000)


def policy(tmp_path, st=None) -> Policy:
    return Policy(FakePort(H.BOARD, st or store(), str(tmp_path), 1 << 16))


def ends(dbl) -> list[int]:
    return [e[1] for e in dbl.events if e[0] == "end"]


def refusals(port) -> list[str]:
    return [m.split(": ")[-1] for m in port.logs if m.startswith("ota: image refused")]


def keys_json(port):
    raw = port.store.get("keys.json")
    return None if raw is None else json.loads(raw)


# --- the policy alone ------------------------------------------------------------------


def test_only_a_rotation_authority_key_signs_a_key_set(tmp_path):
    p = policy(tmp_path)
    data = payload((ADD_ANCHOR, generate()))
    p.check(manifest(1, data, AUTH), offer(1), U.V1, 0)
    with pytest.raises(PolicyError, match="NOT_AUTHORITY"):  # any image-signing anchor
        p.check(manifest(1, data, U.mkey()), offer(1), U.V1, 0)
    assert p.lookup_key(int(U.kid_hex(AUTH), 16)) == pub(AUTH)
    fw = manifest(V2, data, AUTH)._replace(image_type=U.ITYPE)
    with pytest.raises(PolicyError, match="UNKNOWN_KEY"):  # the authority signs no firmware
        p.check(fw, offer(V2, U.ITYPE), U.V1, 0)


def test_rotation_counter_is_the_next_one_exactly(tmp_path):
    p = policy(tmp_path)
    data = payload((ADD_ANCHOR, generate()))
    assert p.offer_ok(offer(1), U.V1, []) and not p.offer_ok(offer(2), U.V1, [])
    assert not p.offer_ok(offer(0xFFFFFFFF), U.V1, [])
    for counter in (0, 2, 0xFFFFFFFF):
        with pytest.raises(PolicyError, match="ROTATION_COUNTER"):
            p.check(manifest(counter, data, AUTH), offer(counter), U.V1, 0)
    p.apply_keys(bytearray(data), manifest(1, data, AUTH))
    assert p.keys_counter == 1 and p.offer_ok(offer(2), U.V1, [])
    assert not p.offer_ok(offer(1), U.V1, [])  # a replay of the one applied


def test_a_board_without_authority_never_fetches_a_key_set(tmp_path):
    p = policy(tmp_path, store(authority=[]))
    assert not p.offer_ok(offer(1), U.V1, [])


@pytest.mark.parametrize(
    "recs,code",
    [
        (lambda: [(REVOKE_ANCHOR, U.mkey())], "LAST_ANCHOR"),
        (lambda: [(REVOKE_AUTHORITY, AUTH)], "LAST_AUTHORITY"),
        (lambda: [(ADD_ANCHOR, AUTH)], "KEY_ROLE"),
        (lambda: [(ADD_AUTHORITY, U.mkey())], "KEY_ROLE"),
    ],
)
def test_a_rotation_that_leaves_no_root_or_mixes_roles_is_refused(tmp_path, recs, code):
    p = policy(tmp_path)
    data = payload(*recs())
    with pytest.raises(PolicyError, match=code):
        p.apply_keys(bytearray(data), manifest(1, data, AUTH))
    assert p.store.get("keys.json") is None
    assert p.keys_counter == 0 and int(U.kid_hex(U.mkey()), 16) in p.keys


def test_the_authority_rotates_itself_and_the_anchors(tmp_path):
    p = policy(tmp_path)
    new_root, auth2 = generate(), generate()
    data = payload((ADD_ANCHOR, new_root), (ADD_AUTHORITY, auth2), (REVOKE_ANCHOR, U.mkey()),
                   (REVOKE_AUTHORITY, AUTH))  # fmt: skip
    p.apply_keys(bytearray(data), manifest(1, data, AUTH))
    saved = json.loads(p.store.get("keys.json"))
    assert saved == {"counter": 1, "anchors": {U.kid_hex(new_root): pub(new_root).hex()},
                     "authority": {U.kid_hex(auth2): pub(auth2).hex()}}  # fmt: skip
    assert list(p.keys) == [int(U.kid_hex(new_root), 16)]
    assert p.auth == (int(U.kid_hex(auth2), 16),)
    data2 = payload((ADD_ANCHOR, generate()))
    with pytest.raises(PolicyError, match="NOT_AUTHORITY"):  # the old authority is gone
        p.check(manifest(2, data2, AUTH), offer(2), U.V1, 0)
    p.check(manifest(2, data2, auth2), offer(2), U.V1, 0)
    (tmp_path / "x").mkdir()
    again = policy(tmp_path / "x", {**store(), "keys.json": p.store.get("keys.json")})
    assert again.keys == p.keys and again.auth == p.auth and again.keys_counter == 1


def test_keys_json_of_the_older_overlay_form_fails_closed(tmp_path):
    old = {"version": 3, "add": {}, "revoke": []}
    p = policy(tmp_path, store(extra={"keys.json": old}))
    assert p.locked == "keys.json unreadable" and not p.offer_ok(offer(1), U.V1, [])


# --- the whole agent (fake board, CH double) ---------------------------------------------


def test_rotation_signed_by_an_anchor_cannot_revoke_the_root(tmp_path):
    """The finding: a build server's anchor key signs a key set that revokes the root and
    adds its own; it is refused and the root still signs images."""
    build_server = generate()
    st = store(anchors=[U.mkey(), build_server])
    files = rot(1, (ADD_ANCHOR, generate()), (REVOKE_ANCHOR, U.mkey()), key=build_server)
    files += U.images(fake_app(V2, 20_000), V2)  # signed by the root
    port, dbl = H.make(str(tmp_path), files, st)
    H.run(port, lambda a: port.running_version() == V2 and not a.state.get("alerts"))
    assert ends(dbl)[:2] == [zcl.INVALID_IMAGE, zcl.SUCCESS]
    assert refusals(port) == ["NOT_AUTHORITY"] and keys_json(port) is None


def test_counter_ffffffff_does_not_block_later_rotations(tmp_path):
    """The finding: version 0xFFFFFFFF once burnt the keys version. Now such an offer is
    not even fetched, and the next counter (1) applies, then 2."""
    new = generate()
    burn = rot(0xFFFFFFFF, (ADD_ANCHOR, generate()))
    port, dbl = H.make(str(tmp_path), burn, store(extra={"agent_config.json": {
        "query_interval_s": 20}}))  # fmt: skip
    a = H.run(port, lambda a: a.client.st == 0 and any("ignored" in m for m in port.logs))
    assert dbl.blocks == 0 and keys_json(port) is None
    dbl.files = [type(dbl.files[0])(f) for f in rot(1, (ADD_ANCHOR, new)) + rot(
        2, (REVOKE_ANCHOR, U.mkey()))]  # fmt: skip
    dbl.idx = 0
    H.run(port, lambda a: len(ends(dbl)) >= 2 and a.client.st == 0, agent=a)
    assert ends(dbl) == [zcl.SUCCESS, zcl.SUCCESS]
    assert keys_json(port)["counter"] == 2
    assert list(keys_json(port)["anchors"]) == [U.kid_hex(new)]


def test_revoking_every_anchor_is_refused_and_updates_go_on(tmp_path):
    files = rot(1, (REVOKE_ANCHOR, U.mkey())) + U.images(fake_app(V2, 20_000), V2)
    port, dbl = H.make(str(tmp_path), files, store())
    H.run(port, lambda a: port.running_version() == V2 and not a.state.get("alerts"))
    assert refusals(port) == ["LAST_ANCHOR"] and keys_json(port) is None
    assert ends(dbl)[:2] == [zcl.INVALID_IMAGE, zcl.SUCCESS]


def test_staged_fragment_signed_by_a_key_revoked_since_is_not_activated(tmp_path):
    """Fragment 1 signed by the old root is staged; a rotation revokes that root (adds a
    new one); fragment 2, signed by the new root, completes the image: activation
    re-checks the staged fragments' keys and refuses, nothing armed, a failure alert."""
    new = generate()
    app = fake_app(V2, 90_000)
    old_files = U.images(app, V2, max_size=50_000)
    new_files = U.images(app, V2, key=new, max_size=50_000)
    assert len(old_files) == 2
    files = [old_files[0], *rot(1, (ADD_ANCHOR, new), (REVOKE_ANCHOR, U.mkey())), new_files[1]]
    port, dbl = H.make(str(tmp_path), files, store())
    H.run(port, lambda a: any("KEY_REVOKED" in m for m in port.logs) and not a.state.get("alerts"))
    assert ends(dbl) == [zcl.REQUIRE_MORE_IMAGE, zcl.SUCCESS, zcl.SUCCESS]
    line = [m for m in port.logs if "KEY_REVOKED" in m]
    assert line == [f"ota: activation of {V2:08x} failed: KEY_REVOKED: key "
                    f"{U.kid_hex(U.mkey())} is no longer a trust anchor"]  # fmt: skip
    assert port.running_version() == U.V1 and not port.pending and port.boots == []
    assert port.store.get("progress.json") is None  # dropped: the CH may send it re-signed
    assert [(x.result, x.version) for x, _ok in dbl.alerts] == [(zcl.RESULT_FAILURE, U.V1)] * len(
        U.SUPPLIERS
    )
    failed = json.loads(port.store.get("agent.json")).get("failed", [])
    assert failed == []  # not counted as a trial that failed: a re-signed copy may follow


def test_staged_image_whose_key_is_still_an_anchor_activates(tmp_path):
    """The same sequence with a rotation that revokes nothing: the image activates."""
    new = generate()
    app = fake_app(V2, 90_000)
    f = U.images(app, V2, max_size=50_000)
    files = [f[0], *rot(1, (ADD_ANCHOR, new)), U.images(app, V2, key=new, max_size=50_000)[1]]
    port, dbl = H.make(str(tmp_path), files, store())
    H.run(port, lambda a: port.running_version() == V2 and not a.state.get("alerts"))
    assert not any("KEY_REVOKED" in m for m in port.logs)


# --- provisioning ------------------------------------------------------------------------


def test_provisioning_writes_a_distinct_rotation_authority(tmp_path):
    from hanota.board import defs, provision
    from hanota.image.keys import public_pem
    from hanota.output import CommandError

    paths = {}
    for name, key in (("root", U.mkey()), ("auth", AUTH)):
        paths[name] = tmp_path / f"{name}.pem"
        paths[name].write_bytes(public_pem(key.public_key()))
    bdef = defs.load("sim-ppmid")
    ident = provision.make_identity(bdef, seed="rot", anchors=[paths["root"]],
                                    authority=[paths["auth"]])  # fmt: skip
    files = provision.store_files(ident)
    assert json.loads(files["authority.json"]) == {U.kid_hex(AUTH): pub(AUTH).hex()}
    assert json.loads(files["trust.json"]) == {U.kid_hex(U.mkey()): pub(U.mkey()).hex()}
    assert provision.device_record(ident, bdef)["authority"] == [U.kid_hex(AUTH)]
    st = {k: v for k, v in U.store().items() if k == "identity.json"} | files
    p = policy(tmp_path, st)
    assert p.auth == (int(U.kid_hex(AUTH), 16),) and p.offer_ok(offer(1), U.V1, [])
    with pytest.raises(CommandError, match="trust anchor and as a rotation authority"):
        provision.make_identity(bdef, seed="rot", anchors=[paths["root"]],
                                authority=[paths["auth"], paths["root"]])  # fmt: skip
    plain = provision.store_files(provision.make_identity(bdef, seed="r", anchors=[paths["root"]]))
    assert "authority.json" not in plain  # no authority: the board never takes a key set
