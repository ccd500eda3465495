"""The hub's control API has a principal (issue 20, item 7): per-supplier tokens kept 0600
in the state directory, ownership in discard/activate, operator-only operations, enrol
that keeps a device's key, R2 queueing instead of a refusal that lasts forever."""

from __future__ import annotations

import asyncio
import json
import stat

import pytest
from hanota.hub import Hub, HubConfig, HubError, control
from hanota.hub import credentials as cr
from hanota.rig import factory
from test_hub_core import SUPS, V2, Rig, run

OTHER = "supplier-c"


@pytest.fixture()
def hub(tmp_path, imgs):
    h = Hub(HubConfig(confirm_delay_s=0.2), state_dir=tmp_path / "hub")
    h.add_anchor(imgs.pub_path)
    yield h
    h.close()


@pytest.fixture(scope="module")
def dev():
    return factory.device("sim-ppmid", SUPS, seed="hub-control", short_addr=11)


def token(hub: Hub, who: str) -> str:
    return (hub.state_dir / "credentials" / cr.file_name(who)).read_text().strip()


def op(hub: Hub, name: str, who: str | None, **args):
    return control.execute(hub, name, args, token(hub, who) if who else None)


def test_tokens_are_issued_per_supplier_and_kept_0600(hub, dev):
    op(hub, "enrol", cr.OPERATOR, record=dev[1])
    creds = hub.state_dir / "credentials"
    assert stat.S_IMODE(creds.stat().st_mode) == 0o700
    files = sorted(p.name for p in creds.iterdir())
    link_key = f"link-{dev[1]['eui64']}.key"  # the CH link key lives beside the tokens
    assert files == [link_key, "operator.token", "supplier-supplier-a.token",
                     "supplier-supplier-b.token"]  # fmt: skip
    for p in creds.iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
    assert len({p.read_text() for p in creds.iterdir()}) == 4
    log = (hub.state_dir / "events.jsonl").read_text()
    assert all(p.read_text().strip() not in log for p in creds.iterdir())  # never logged
    assert op(hub, "whoami", cr.supplier("supplier-b")) == {"principal": "supplier:supplier-b"}
    assert cr.file_name(cr.supplier("a/../b")) == "supplier-x612f2e2e2f62.token"


def test_no_token_or_a_wrong_one_is_refused(hub, dev):
    op(hub, "enrol", cr.OPERATOR, record=dev[1])
    with pytest.raises(HubError, match="not authenticated"):
        control.execute(hub, "inventory", {}, None)
    with pytest.raises(HubError, match="not authenticated"):
        control.execute(hub, "inventory", {}, token(hub, cr.OPERATOR)[:-1] + "x")
    assert control.execute(hub, "ping", {}, None) == {"pong": True}


def test_a_supplier_acts_only_as_itself_on_its_own(hub, dev, frag2):
    op(hub, "enrol", cr.OPERATOR, record=dev[1])
    eui = dev[1]["eui64"]
    a, b = cr.supplier("supplier-a"), cr.supplier("supplier-b")
    with pytest.raises(HubError, match="this token is supplier-b's, not supplier-a's"):
        op(hub, "submit", b, supplier="supplier-a", devices=[eui], files=frag2)
    files = [str(f) for f in frag2]
    sub = op(hub, "submit", a, devices=[eui], files=files, activate_at="hold")
    assert sub["supplier"] == "supplier-a"
    with pytest.raises(HubError, match="not supplier-b's"):
        op(hub, "discard", b, submission=sub["id"])
    with pytest.raises(HubError, match="not supplier-b's"):
        op(hub, "activate", b, submission=sub["id"])
    for name, args in (("enrol", {"record": dev[1]}), ("meter", {"on": True}),
                       ("trust", {"public_key": "00" * 64}), ("credentials", {})):  # fmt: skip
        with pytest.raises(HubError, match="not allowed for supplier:supplier-b"):
            op(hub, name, b, **args)
    with pytest.raises(HubError, match="not allowed for operator"):
        op(hub, "submit", cr.OPERATOR, supplier="supplier-a", devices=[eui], files=files)
    assert op(hub, "discard", a, submission=sub["id"])["discarded"]
    assert [x["supplier"] for x in op(hub, "alerts", b)] == []  # a's alerts are a's


def test_inventory_of_a_supplier_is_the_devices_it_serves(hub, dev):
    other = factory.device("sim-ihd", [OTHER], seed="hub-control-2", short_addr=12)[1]
    op(hub, "enrol", cr.OPERATOR, record=dev[1])
    op(hub, "enrol", cr.OPERATOR, record=other)
    mine = op(hub, "inventory", cr.supplier(OTHER))["devices"]
    assert [d["eui64"] for d in mine] == [other["eui64"]]
    assert len(op(hub, "inventory", cr.OPERATOR)["devices"]) == 2


def test_enrol_keeps_a_known_devices_key_unless_told(hub, dev):
    op(hub, "enrol", cr.OPERATOR, record=dev[1])
    rogue = dict(
        dev[1], public_key=factory.device("sim-ppmid", SUPS, seed="rogue")[1]["public_key"]
    )
    with pytest.raises(HubError, match="another public key.*--replace-key"):
        op(hub, "enrol", cr.OPERATOR, record=rogue)
    assert hub.state.devices[dev[1]["eui64"]].record.public_key.hex() == dev[1]["public_key"]
    op(hub, "enrol", cr.OPERATOR, record=dev[1])  # the same record again: fine
    op(hub, "enrol", cr.OPERATOR, record=rogue, replace_key=True)
    assert hub.state.devices[dev[1]["eui64"]].record.public_key.hex() == rogue["public_key"]
    kinds = [json.loads(x)["kind"] for x in (hub.state_dir / "events.jsonl").open()]
    assert kinds.count("enrol-refused") == 1 and kinds.count("key-replaced") == 1


def test_r2_queue_starts_the_next_supplier_when_the_first_ends(hub, dev, frag2):
    hub.enrol(dev[1])
    eui = dev[1]["eui64"]

    async def go():
        async with Rig(hub, dev) as rig:
            first = hub.submit("supplier-a", [eui], frag2)
            with pytest.raises(HubError, match="--queue"):
                hub.submit("supplier-b", [eui], frag2)
            second = hub.submit("supplier-b", [eui], frag2, queue=True)
            assert second["queued"] == [eui]
            assert hub.inventory()["devices"][0]["queued"] == [second["id"]]
            await rig.client.recv(zcl_notify())  # the first submission's notify
            hub.discard("supplier-a", first["id"])
            note = await rig.client.recv(zcl_notify())  # the second one's turn: offered
            assert note.version == V2
            assert hub.transfer(eui).submission.supplier == "supplier-b"
            got = await rig.client.update()
            assert got == [f.read_bytes() for f in frag2]
            await rig.settle()

    run(go())
    hist = hub.inventory()["devices"][0]["history"]
    assert [(h["supplier"], h["outcome"]) for h in hist] == [
        ("supplier-a", "discarded"), ("supplier-b", "success")]  # fmt: skip
    conflict = [a for a in hub.alerts("supplier-a") if a["kind"] == "conflict"]
    assert [c["queued"] for c in conflict] == [False, True]


def zcl_notify():
    from otaclient import zcl

    return zcl.ImageNotify


def test_control_socket_takes_the_token(tmp_path, imgs, dev):
    """The real socket path: a request carries its token; one without is refused."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory(prefix="hub") as d:  # short: AF_UNIX path limit
        state = Path(d)
        h = Hub(HubConfig(), state_dir=state)

        async def go():
            server = await control.start(h, state)
            try:
                tok = token(h, cr.OPERATOR)
                call = asyncio.to_thread
                await call(control.call, state, "enrol", token=tok, record=dev[1])
                with pytest.raises(HubError, match="not authenticated"):
                    await call(control.call, state, "inventory")
                inv = await call(control.call, state, "inventory", token=tok)
                assert inv["devices"][0]["eui64"] == dev[1]["eui64"]
            finally:
                server.close()

        try:
            asyncio.run(asyncio.wait_for(go(), 20))
        finally:
            h.close()
