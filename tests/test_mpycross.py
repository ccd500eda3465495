"""hanota.mpycross: its cache under concurrent builds (test workers, rig threads)."""

import threading

from hanota import mpycross, paths


def test_concurrent_compiles_of_one_source_share_the_cache_safely(tmp_path, monkeypatch):
    # Workers and rig threads compile the same module at once. Each used to write the
    # same temporary name, and one renamed another's file away (FileNotFoundError in a
    # test run with -n 2): each writer now has a name of its own.
    monkeypatch.setattr(paths, "BUILD", tmp_path)
    for n in range(5):  # a cold cache each round: a new source
        src = b"def f(a):\n    return a + %d\n" % n * 20
        results, errors = [], []
        start = threading.Barrier(6)

        def build(src=src, results=results, errors=errors, start=start):
            start.wait()
            try:
                results.append(mpycross.compile_source(src, "otaclient/x.py"))
            except Exception as e:  # noqa: BLE001 (reported below)
                errors.append(e)

        threads = [threading.Thread(target=build) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert len(results) == 6 and len(set(results)) == 1 and results[0].startswith(b"M")
        assert mpycross.compile_source(src, "otaclient/x.py") == results[0]  # from the cache
    cache = tmp_path / "mpy-cache"
    assert sorted(p.suffix for p in cache.iterdir()) == [".mpy"] * 5  # no temporary left
