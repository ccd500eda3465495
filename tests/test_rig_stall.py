"""A real sim board (MicroPython + the agent) powered off mid-transfer: the hub's stall
timeout raises a transfer-failure alert and the inventory shows the transfer stalled;
powered on again, the board resumes and the update completes."""

from __future__ import annotations

import pytest
from hanota import paths
from hanota.rig.fixtures import HubThread
from test_rig_sim import V1, V2, app_image

pytestmark = [
    pytest.mark.sim,
    pytest.mark.skipif(not (paths.FIRMWARE / "main.py").is_file(), reason="no agent"),
]


def test_board_powered_off_mid_transfer_stalls_then_resumes(make_board, images, tmp_path):
    files = app_image(images, "sim-ppmid", V2, 160000, max_size=100000)
    hub = HubThread(tmp_path / "hub", "uart-115200", stall_timeout_s=2.0)
    try:
        b = make_board()
        hub.attach(b)
        eui = b.record["eui64"]
        hub.wait(lambda: hub.hub.state.devices[eui].announced_version, 30, "the announce")
        hub.call(hub.hub.submit, "supplier-a", [eui], files)
        hub.wait(lambda: (t := hub.hub.transfer(eui)) is not None and t.offset > 20000, 60,
                 "the transfer to be under way")  # fmt: skip
        b.sim.stop()  # the board disappears: power off, its ports gone

        def failures():
            return [a for a in hub.hub.alerts() if a["kind"] == "transfer-failure"]

        [fail] = hub.wait(failures, 20, "the stall alert")
        assert fail["supplier"] == "supplier-a" and fail["reason_code"] == 3, fail
        # the stall (no request for 2 s) and the link going down (the emulator seeing the
        # closed pty) are separate events: their order is not the claim
        hub.wait(lambda: not hub.hub.state.devices[eui].connected, 20, "the link to go down")
        inv = hub.call(hub.hub.inventory)["devices"][0]
        assert inv["in_progress"]["state"] == "stalled" and not inv["connected"], inv
        assert inv["history"][-1]["outcome"] == "stalled"

        b.sim.start()  # back (new ptys, as a re-plugged USB adapter) and re-linked
        hub.attach(b)
        hub.wait(lambda: hub.hub.settled() and any(a["kind"] == "activation"
                 for a in hub.hub.alerts()), 150, "the resumed update")  # fmt: skip
        assert b.sim.running_version == V2 and hub.hub.state.devices[eui].version == V2
        kinds = [a["kind"] for a in hub.call(hub.hub.alerts)]
        assert kinds.count("transfer-failure") == 1 and kinds.count("transfer-success") == 1
        assert hub.hub.transfer(eui) is None  # closed after confirmation
        sub = next(iter(hub.hub.state.transfers.values()))
        assert sub.stalls == 1 and sub.submission.version == V2 != V1
    finally:
        hub.close()
