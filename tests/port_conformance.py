"""Port conformance from pytest: run firmware/ports/conformance.py on a board, parse its lines.

A "runner" is any callable(code: str) -> console text that runs MicroPython code on the
board under test: a sim board here, `mpremote exec` for a real one.
"""

from __future__ import annotations

from collections.abc import Callable

CODE = """
from ports import make_port
from ports.conformance import run_conformance
run_conformance(make_port(), otadata={otadata})
"""

Runner = Callable[[str], str]


def run_suite(run: Runner, otadata: bool = False) -> dict[str, str]:
    """name -> "" (pass) or the failure text; raises if the suite did not finish."""
    out = run(CODE.format(otadata=otadata))
    results: dict[str, str] = {}
    for line in out.replace("\r", "").split("\n"):
        if line.startswith("PASS "):
            results[line[5:]] = ""
        elif line.startswith("FAIL "):
            name, _, why = line[5:].partition(": ")
            results[name] = why or "failed"
    assert "CONFORMANCE " in out, f"the suite did not finish:\n{out}"
    return results


def assert_conformant(results: dict[str, str], expected: tuple[str, ...]) -> None:
    missing = [n for n in expected if n not in results]
    failed = {n: why for n, why in results.items() if why}
    assert not missing and not failed, f"missing checks {missing}, failures {failed}"
