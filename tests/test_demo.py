"""`hanota demo` runs end to end without a terminal and exits 0 with every check passed."""

from __future__ import annotations

import pytest
from hanota import cli, paths


@pytest.mark.sim
@pytest.mark.skipif(
    not (paths.FIRMWARE / "main.py").is_file(), reason="the agent (firmware/main.py) is not built"
)
def test_demo_without_a_terminal_passes_every_check(tmp_path, capsys):
    rc = cli.main(["demo", "--workdir", str(tmp_path / "demo"), "--link", "direct"])
    out, err = capsys.readouterr()
    assert rc == 0, err[-3000:]
    assert "all checks passed" in err and "FAILED" not in err
    assert "2 signed OTA files" in err and "refused" in err  # R1 fragments, R2 refusal
    for kind in ("submission-processed", "transfer-success", "activation", "version-confirmat"):
        assert kind in out, out
