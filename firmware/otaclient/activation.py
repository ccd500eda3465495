"""Activation and the boot outcome: consent, set_pending + reset, self-test, confirm, report.

The only module that arms the bootloader or confirms an app; it neither fetches nor
parses images. The confirm happens last, on the success path only.
"""

from otaclient import client as _client
from otaclient import policy as _policy
from otaclient import zcl_client
from otaclient.state import PROGRESS


def activate_due(agent, c):
    """client.on_activate: the upgrade time has come (consent decides)."""
    port, pol, state = agent.port, agent.policy, agent.state
    version = c.ended[zcl_client.Q_VERSION]
    verdict, until = pol.decide(port.now())
    if verdict == _policy.DEFER:
        if state.get("deferred") != version:
            agent.alerting().queue(version, zcl_client.RESULT_DEFERRED, deferred=version)
        c.activate_at = until
        return
    if verdict == _policy.REFUSE:
        port.log("ota: activation of %08x refused by consent" % version)
        refused = state.get("refused", []) + [version]
        agent.alerting().queue(version, zcl_client.RESULT_REFUSED, refused=refused)
        agent.announce(zcl_client.BOOT_REFUSED)
        c.ended = None
        c._goto(_client.IDLE, pol.cfg["query_interval_s"] * 1000)
        return
    activate(agent, c)


def activate(agent, c):
    """Check the slot from flash once more, record the attempt, arm the bootloader, reboot."""
    port = agent.port
    p = c.reasm.progress
    # each staged fragment's signing key must still be an anchor: a key rotation since it
    # was staged may have revoked one (a record without key ids, an older agent's: refused)
    for kid in p.get("k") or (-1,):
        if kid not in agent.policy.keys:
            e = "KEY_REVOKED: key %08x is no longer a trust anchor" % (kid & 0xFFFFFFFF)
            return _arm_failed(agent, c, p["v"], e, 0)
    try:
        c.reasm.verify_slot()
    except ValueError as e:
        port.log("ota: slot changed before activation: %s" % e)
        c.reasm.cancel()
        c.ended = None
        c._goto(_client.IDLE)
        return
    # a reset follows: the inflater's decoder goes now, so the records below find a free
    # block (opening a store file needs a few hundred bytes in one piece)
    from otaclient import inflate

    inflate.release()
    rec = {"v": p["v"], "from": port.running_version(), "sc": p["sc"], "armed": 0}
    agent.state.update(activating=rec, deferred=None)
    port.log("ota: activating %08x" % p["v"])
    try:
        port.set_pending(p["v"])
    except ValueError as e:  # the port's contract error (ESP32: set_boot's own image check)
        return _arm_failed(agent, c, p["v"], e)
    rec["armed"] = 1  # a cut before this line: the bootloader was maybe never armed
    agent.state.update(activating=rec)
    port.reset()


def _arm_failed(agent, c, version, e, count=1):
    """The staged image cannot be activated (the bootloader refused it after every check of
    ours passed, or its signing key was revoked since): a failed activation, reported to
    the suppliers; the image is dropped (it would be refused again), nothing armed. With
    `count`, a failed attempt, so the CH may offer that version max_attempts times in all
    (a revoked key's image is not counted: the same version re-signed may follow)."""
    port, state = agent.port, agent.state
    port.log("ota: activation of %08x failed: %s" % (version, e))
    failed = state.get("failed", [])
    if count:
        failed = _count_failure(failed, version)
    running = port.running_version()
    agent.alerting().queue(running, zcl_client.RESULT_FAILURE, activating=None, failed=failed)
    c.reasm.cancel()
    c.ended = None
    c._goto(_client.IDLE, agent.policy.cfg["query_interval_s"] * 1000)


def self_test(agent):
    """What the new app must prove before it confirms itself."""
    port = agent.port
    try:
        # P-256 is not loaded here: image.prepare() loaded it at this boot (main.py), before
        # the agent, and a second load beside activation code needs a free block the heap
        # may not have then (it is loaded per use: image.p256_call)
        from otaclient import download, image, link, reassembly  # noqa: F401

        ok = port.store.get("identity.json") is not None
        ok = ok and port.link is not None and len(agent.policy.keys) > 0
    except Exception as e:  # any failure means "do not confirm"
        port.log("ota: self-test error %r" % e)
        return False
    return ok


def after_boot(agent):
    """Confirm a trial boot after the self-test; settle a recorded activation. boot_status."""
    port, state = agent.port, agent.state
    if port.pending_verify():
        if not self_test(agent):
            port.log("ota: self-test failed; rolling back")
            port.reset()
            return zcl_client.BOOT_NORMAL
        port.confirm()
        port.log("ota: trial boot confirmed")
    act = state.get("activating")
    if not act:
        return zcl_client.BOOT_NORMAL
    running = port.running_version()
    if running == act["v"]:
        sc = max(state.get("sec_counter", 0), act["sc"])
        floor = max(state.get("floor", 0), running)  # anti-rollback, whatever the port reads
        agent.alerting().queue(
            running, zcl_client.RESULT_SUCCESS, activating=None, sec_counter=sc, floor=floor
        )
        port.store.delete(PROGRESS)  # the activated image's: done
        agent.client.reasm.progress = None  # the client, built before this, forgets it too
        status = zcl_client.BOOT_ACTIVATED
    elif not act.get("armed"):
        # a cut around set_pending: the bootloader may never have been armed, or it was and
        # the new app's trial boot failed and was rolled back (no way to tell here). Either
        # way the activation failed: report it; count a failed attempt only when known.
        agent.alerting().queue(running, zcl_client.RESULT_FAILURE, activating=None)
        status = zcl_client.BOOT_NORMAL
    else:
        failed = _count_failure(state.get("failed", []), act["v"])
        agent.alerting().queue(running, zcl_client.RESULT_FAILURE, activating=None, failed=failed)
        status = zcl_client.BOOT_ROLLED_BACK  # staged progress kept: the CH may try once more
    port.log("ota: boot after activation of %08x: status %d" % (act["v"], status))
    return status


def _count_failure(failed, version):
    """[[version, attempts], ...] of the last few versions that did not survive a trial."""
    out = [[v, k] for v, k in failed if v != version]
    n = sum(k for v, k in failed if v == version)
    return (out + [[version, n + 1]])[-8:]
