"""`hanota bench --only lab --quick`: four boards through labgrid places on two hosts and
four local boards, one submission each, every board completed, the figures in the JSON
and the section in the markdown. Checks the family's behaviour, not its speed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hanota import paths

pytestmark = [
    pytest.mark.sim,
    pytest.mark.skipif(not (paths.FIRMWARE / "main.py").is_file(), reason="no agent"),
]


def test_bench_lab_quick_json(tmp_path):
    out = tmp_path / "b.md"
    res = subprocess.run(
        [sys.executable, "-m", "hanota.cli", "bench", "--only", "lab", "--quick", "--json",
         "--out", str(out)],
        capture_output=True, text=True, timeout=280,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-4000:]
    sec = json.loads(res.stdout)["sections"]["lab"]
    assert sec["error"] is None
    figs = sec["figures"]
    assert {"boards", "aggregate", "local_boards", "local_aggregate", "ratio", "bringup_s",
            "bringup_board_s", "lab_start_s"} <= set(figs)  # fmt: skip
    assert figs["boards"]["bar"]["text"] == "≥ 32 boards"
    assert figs["boards"]["value"] == 4 and figs["local_boards"]["value"] == 4
    assert figs["aggregate"]["value"] > 0 and figs["local_aggregate"]["value"] > 0
    lab, local = sec["data"]["places"], sec["data"]["local"]
    assert lab["states"] == ["complete"] * 4 and local["states"] == ["complete"] * 4
    assert lab["hosts"] == ["host1", "host2"]
    assert lab["file_bytes"] == local["file_bytes"] > 10_000  # one file for both
    assert len(lab["bringup_per_board_s"]) == 4
    assert "Lab fleet" in out.read_text()
