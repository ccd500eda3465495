"""Policy: offers, manifest checks, consent, supplier trailers (key rotation: test_rotation*.py)."""

from __future__ import annotations

import json

import agent_util as U
import harness as H
import pytest
from fakes import FakePort, fake_app
from hanota.image.keys import generate, raw_public
from otaclient import policy, zcl
from otaclient.policy import Policy, PolicyError

V2 = 0x01000100


def _policy(tmp_path, store=None):
    return Policy(FakePort(H.BOARD, store or U.store(), str(tmp_path), 1 << 16))


def _offer(version=V2, size=1000, mfr=U.MFR, itype=U.ITYPE):
    return zcl.QueryNextImageRsp(0, mfr, itype, version, size)


def test_offers(tmp_path):
    p = _policy(tmp_path)
    assert p.offer_ok(_offer(), U.V1, [])
    assert not p.offer_ok(_offer(version=U.V1), U.V1, [])  # not newer
    assert not p.offer_ok(_offer(size=0), U.V1, [])
    assert not p.offer_ok(_offer(size=750_001), U.V1, [])  # R1
    assert not p.offer_ok(_offer(mfr=1), U.V1, [])
    assert not p.offer_ok(_offer(itype=1), U.V1, [])
    assert p.offer_ok(_offer(), U.V1, [[V2, 1]])
    assert not p.offer_ok(_offer(), U.V1, [[V2, 2]])  # max_attempts trial boots failed


def test_config_and_bound_ch_from_the_store(tmp_path):
    ident = json.loads(U.store()["identity.json"])
    ident["ch_addr"] = 0x0007
    store = U.store(extra={"agent_config.json": {"page_size": 0, "window": 8}})
    store["identity.json"] = json.dumps(ident).encode()
    p = _policy(tmp_path, store)
    assert p.cfg["page_size"] == 0 and p.cfg["window"] == 8 and p.cfg["max_block"] == 254
    assert p.from_ch(7) and not p.from_ch(0)


@pytest.mark.parametrize(
    "mode,until,expect",
    [
        ("accept", 0, (policy.ACCEPT, 0)),
        ("refuse", 0, (policy.REFUSE, 0)),
        ("defer", 2000, (policy.DEFER, 2000)),
        ("defer", 500, (policy.ACCEPT, 0)),  # the deferral is over
    ],
)
def test_consent(tmp_path, mode, until, expect):
    p = _policy(tmp_path, U.store(extra={"consent.json": {"mode": mode, "until": until}}))
    assert p.decide(1000) == expect


def test_supplier_signed_image_only_from_a_served_supplier(tmp_path):
    served, other = generate(), generate()
    extra = {"suppliers.json": {"supplier-a": raw_public(served.public_key()).hex()}}
    for i, (skey, ok) in enumerate(((served, True), (other, False))):
        d = tmp_path / str(i)
        d.mkdir()
        files = U.images(fake_app(V2, 20_000), V2, supplier_key=skey)
        port, dbl = H.make(str(d), files, U.store(extra=extra))
        H.run(port, lambda a, dbl=dbl: [e for e in dbl.events if e[0] == "end"])
        want = zcl.SUCCESS if ok else zcl.INVALID_IMAGE
        assert [e[1] for e in dbl.events if e[0] == "end"] == [want]


def test_manifest_checks(tmp_path):
    p = _policy(tmp_path)
    from otaclient.imagefmt import Manifest

    kid = int(U.kid_hex(U.mkey()), 16)
    m = Manifest(
        1, U.MFR, U.ITYPE, U.HW, U.HW, V2, 5, kid, 10, b"\0" * 32, False, 0, 1, 0, 10, 10, bytes(16)
    )
    p.check(m, _offer(), U.V1, 5)
    cases = {
        "WRONG_MANUFACTURER": m._replace(manufacturer_code=1),
        "WRONG_IMAGE_TYPE": m._replace(image_type=1),
        "HW_MISMATCH": m._replace(hw_min=U.HW + 1, hw_max=U.HW + 2),
        "UNKNOWN_KEY": m._replace(key_id=kid ^ 1),
        "VERSION_MISMATCH": m._replace(file_version=V2 + 1),
        "COUNTER": m._replace(security_counter=4),
    }
    for code, bad in cases.items():
        with pytest.raises(PolicyError, match=code):
            p.check(bad, _offer(), U.V1, 5)
    with pytest.raises(PolicyError, match="DOWNGRADE"):
        p.check(m._replace(file_version=U.V1), _offer(version=U.V1), U.V1, 5)
