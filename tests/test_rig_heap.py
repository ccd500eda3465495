"""The rig's peak_heap: the agent's console heap report parsed (captured text), and the
rig provisioning agent_config.json with heap_report on (read back from the LittleFS store)."""

from __future__ import annotations

import json

import pytest
from hanota import paths
from hanota.rig import heap, simboards
from hanota.rig.factory import Images

# a console as the sim relays it: \r\n line ends, boot noise, the agent's own log lines,
# an activation reboot (a new idle), a traceback-like line that must not count
CAPTURED = (
    b"MicroPython v1.28 on linux\r\n"
    b"heap: idle=71234\r\n"
    b"agent: query 0x02000000 from supplier-a\r\n"
    b"heap: peak=79010 idle=71234\r\n"
    b"agent: fragment 1/2 staged\r\n"
    b"heap: peak=80500 idle=71234\r\n"  # fragment 2: the run's largest, 9266 above idle
    b"agent: activating 0x02000000\r\n"
    b"heap: idle=70900\r\n"  # after the reboot into the new app
    b"heap: peak=75000 idle=70900\r\n"  # 4100 above idle
    b"x = 'heap: peak=999999 idle=1'  # inside a line: not a report\r\n"
)


def test_peak_is_the_largest_rise_above_idle_of_any_report():
    rep = heap.parse(CAPTURED)
    assert (rep.peak_heap, rep.idle_heap, rep.peak_live) == (80500 - 71234, 71234, 80500)
    assert rep.lines == 5 and rep.note() is None
    assert isinstance(rep.peak_heap, int)


def test_no_report_line_gives_null_and_says_why():
    rep = heap.parse(b"MicroPython v1.28\r\nagent: idle\r\n")
    assert rep.peak_heap is None and rep.idle_heap is None
    assert "heap_report" in rep.note()
    only_idle = heap.parse("heap: idle=1000\n")
    assert only_idle.peak_heap is None and only_idle.idle_heap == 1000
    assert "no fragment ended" in only_idle.note()


def test_with_report_keeps_other_tunables():
    assert heap.with_report({"page_size": 0}) == {"page_size": 0, "heap_report": True}


def test_rig_board_store_holds_agent_config_with_heap_report(tmp_path):
    images = Images(tmp_path / "keys")
    ident, _rec = simboards.fresh(
        tmp_path / "b", "sim-ppmid", factory_version=0x01000000, trust=[images.pub_path],
        suppliers=["supplier-a"], seed="heap-test", agent_config=heap.with_report(None),
    )  # fmt: skip
    assert ident.agent_config == {"heap_report": True}
    got = _read_store(tmp_path / "b", "agent_config.json")
    assert json.loads(got) == {"heap_report": True}


def _read_store(directory, name: str) -> str:
    """A file of the sim board's LittleFS store, read by the real MicroPython."""
    from hanota.board import defs
    from hanota.faults.readback import read_store

    data = read_store(directory, defs.load(str(directory / "board.json")), [name])[name]
    assert data is not None, name
    return data.decode().strip()


@pytest.mark.sim
@pytest.mark.skipif(
    not (paths.FIRMWARE / "otaclient" / "heapreport.py").is_file(),
    reason="the agent's heap report (firmware/otaclient/heapreport.py) has not landed",
)
def test_rig_update_json_gives_peak_heap_as_an_int(capsys, images, tmp_path):
    from test_rig_sim import V1, V2, app_image, rig_update

    files = app_image(images, "sim-ppmid", V2, 160000, max_size=100000)
    rc, res = rig_update(capsys, "--image", *map(str, files), "--trust", str(images.pub_path),
                         "--workdir", str(tmp_path))  # fmt: skip
    assert rc == 0 and res["ok"] and (res["before_version"], res["running_version"]) == (V1, V2)
    assert isinstance(res["peak_heap"], int) and isinstance(res["idle_heap"], int), res
    assert 0 < res["peak_heap"] < res["idle_heap"] * 4, res  # bytes above idle, not a total
    console = (tmp_path / "board" / "console.log").read_bytes()
    assert heap.parse(console).peak_heap == res["peak_heap"]
    assert console.count(b"heap: peak=") >= 2  # one per fragment (2 here) at least
