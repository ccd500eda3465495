"""Every command of `hanota` explains itself: each subcommand has a description or help,
each option and positional has help text (the parser is built, nothing runs)."""

from __future__ import annotations

import argparse

import pytest
from hanota.cli import build_parser


def _walk(parser: argparse.ArgumentParser, path: str):
    """(command path, parser) for `parser` and every subcommand below it."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _walk(sub, f"{path} {name}")


def _helps(action: argparse._SubParsersAction) -> dict[str, str | None]:
    # a subcommand's help (its line in the parent's listing), by name
    return {c.dest: c.help for c in action._choices_actions}


def _missing(parser: argparse.ArgumentParser, path: str) -> list[str]:
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._VersionAction):
            continue  # argparse writes their help
        if isinstance(action, argparse._SubParsersAction):
            helps = _helps(action)
            for name, sub in action.choices.items():
                if not (helps.get(name) or sub.description):
                    out.append(f"{path} {name}: subcommand without help or description")
            continue
        if not (action.help and action.help.strip()) or action.help == argparse.SUPPRESS:
            what = "/".join(action.option_strings) or action.dest
            out.append(f"{path}: {what} has no help text")
    return out


def missing_help(parser: argparse.ArgumentParser) -> list[str]:
    return [m for path, p in _walk(parser, parser.prog) for m in _missing(p, path)]


def test_every_option_and_subcommand_of_hanota_has_help():
    parser = build_parser()
    commands = [path for path, _ in _walk(parser, parser.prog)]
    assert "hanota board flash" in commands and "hanota hub serve" in commands  # walked
    assert missing_help(parser) == []


@pytest.mark.parametrize(
    "build, expected",
    [
        (lambda s: s.add_parser("x", help="x").add_argument("--bare"),
         ["t x: --bare has no help text"]),
        (lambda s: s.add_parser("x", help="x").add_argument("name"),
         ["t x: name has no help text"]),
        (lambda s: s.add_parser("x").add_argument("--y", help="y"),
         ["t x: subcommand without help or description"]),
        (lambda s: s.add_parser("x", description="d").add_argument("--y", help=" "),
         ["t x: --y has no help text"]),
        (lambda s: s.add_parser("x", help="x").add_argument("--y", help="y"), []),
    ],
)  # fmt: skip
def test_the_walk_finds_what_is_missing(build, expected):
    parser = argparse.ArgumentParser(prog="t")
    build(parser.add_subparsers(dest="c"))
    assert missing_help(parser) == expected


@pytest.mark.parametrize("module", ["hanota.sweep", "hanota.faults", "hanota.fuzz"])
def test_long_run_commands_print_their_help(module):
    # run as `python -m`, outside the hanota parser the walk above reads
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert out.returncode == 0 and out.stdout.startswith("usage:"), out.stderr[-2000:]
