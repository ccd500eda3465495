"""One target under atheris, in its own process (atheris.Fuzz() never returns).

    python -m hanota.fuzz.worker TARGET [libFuzzer flags and corpus dirs]

The runner (runner.py) starts this; run it by hand to reproduce a crash file:
`python -m hanota.fuzz.worker image_parser fuzz/crashes/image_parser-crash-...`.
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> None:
    import atheris

    # coverage for the device code only; p256's big-int loops would just run slower
    with atheris.instrument_imports(include=["otaclient"], exclude=["otaclient.p256"]):
        import otaclient.image  # noqa: F401
        import otaclient.link  # noqa: F401
        import otaclient.reassembly  # noqa: F401
        import otaclient.zcl  # noqa: F401
    from hanota.fuzz.targets import TARGETS

    if len(argv) < 2 or argv[1] not in TARGETS:
        sys.exit(f"usage: python -m hanota.fuzz.worker {{{','.join(TARGETS)}}} [libFuzzer args]")
    atheris.Setup([argv[0]] + argv[2:], TARGETS[argv[1]])
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
