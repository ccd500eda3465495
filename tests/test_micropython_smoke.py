"""The real MicroPython unix port runs, heap-limited, with firmware/ importable."""

from mpy import check_mpy


def test_micropython_runs_with_64k_heap_and_imports_core():
    out = check_mpy("import gc, otaclient; gc.collect(); print(gc.mem_free() + gc.mem_alloc())")
    total = int(out.split()[-1])
    assert 60_000 <= total <= 70_000, total
