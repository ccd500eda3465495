"""Fuzzing: atheris (libFuzzer) targets for the device parsers, seeds, and a runner.

`python -m hanota.fuzz --seconds N` runs every target; see docs/fuzzing.md.
"""
