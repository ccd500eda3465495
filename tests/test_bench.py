"""`hanota bench`: the command's behaviour (JSON keys, the markdown table), not its speed."""

from __future__ import annotations

import json
import subprocess
import sys

from hanota.bench.report import markdown
from hanota.bench.results import Bar, Figure, Section


def test_bench_verify_quick_writes_json_and_markdown(tmp_path):
    out = tmp_path / "bench.md"
    res = subprocess.run(
        [sys.executable, "-m", "hanota.cli", "bench", "--only", "verify", "--quick", "--json",
         "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert {"machine", "sections", "summary", "out", "errors"} <= set(doc)
    assert {"cpu", "cores", "python", "micropython"} <= set(doc["machine"])
    figs = doc["sections"]["verify"]["figures"]
    assert {"mpy_ms", "cpython_ms", "ecdsa_ms", "openssl_ms"} <= set(figs)
    assert figs["mpy_ms"]["value"] > 0 and figs["mpy_ms"]["status"] in ("PASS", "MISS")
    assert figs["mpy_ms"]["bar"]["text"] == "≤ 10 ms"
    assert doc["errors"] == {}
    text = out.read_text()
    assert "## ECDSA P-256 verify" in text
    assert "| figure | value | bar (QUALITY.md) | result |" in text
    assert "Command: `hanota bench --only verify --quick`" in text


def test_unknown_family_is_a_usage_error(tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "hanota.cli", "bench", "--only", "nope", "--out", str(tmp_path / "x.md")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert res.returncode == 2
    assert "unknown bench family nope" in res.stderr


def test_bars_give_pass_miss_and_margin():
    le, ge = Bar("<=", 10, "ms"), Bar(">=", 0.85)
    assert le.passed(6.4) and not le.passed(12)
    assert le.margin(5) == "passes, 2.00× under"
    assert ge.margin(0.68) == "misses by 20 %"
    assert Figure("x", "x", None, "ms", le).status() == "pending"


def test_report_lists_errors_and_pending():
    s = Section(
        "link", "Link", error="TimeoutError: no board", pending=["mpremote ratio: no board"]
    )
    text = markdown({"argv": "hanota bench"}, [s], quick=True)
    assert "**Error in this run:** `TimeoutError: no board`" in text
    assert "- mpremote ratio: no board" in text
    assert "Quick run" in text
