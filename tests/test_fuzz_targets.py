"""Fuzz targets (hanota.fuzz) without atheris: seed corpora, short hypothesis runs,
regression replays of every finding, and proof that the targets catch broken code."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from hanota.fuzz import fixtures, hypo, runner, seeds
from hanota.fuzz.__main__ import main as fuzz_main
from hanota.fuzz.fakeport import InvariantError
from hanota.fuzz.targets import REPLAY_ONLY, TARGETS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from otaclient import image, link, p256

REGRESSIONS = runner.ROOT / "fuzz" / "regressions"
REPLAYS = {**TARGETS, **REPLAY_ONLY}
EXAMPLES = {"link_decoder": 150, "zcl_decoder": 300, "image_parser": 60, "reassembly": 30,
            "delta_applier": 100}  # fmt: skip


def _corpus(target: str) -> list[Path]:
    return sorted((runner.CORPUS / target).iterdir())


def test_seed_corpus_is_current():
    for target, want in seeds.generate().items():
        have = {p.name: p.read_bytes() for p in _corpus(target)}
        assert have == want, f"fuzz/corpus/{target} is stale: run python -m hanota.fuzz.seeds"


@pytest.mark.parametrize("target", list(TARGETS))
def test_target_passes_its_seed_corpus(target):
    for path in _corpus(target):
        TARGETS[target](path.read_bytes())


@pytest.mark.parametrize("target", list(TARGETS))
def test_target_on_random_and_mutated_inputs(target):
    @settings(
        max_examples=EXAMPLES[target], deadline=None, database=None,
        suppress_health_check=list(HealthCheck),
    )  # fmt: skip
    @given(hypo.inputs(hypo.seeds_of(target)))
    def run(data):
        TARGETS[target](data)

    run()


@given(
    index=st.integers(0, len(fixtures.parser_files()) - 1),
    pos=st.integers(0, 1 << 16),
    xor=st.integers(1, 255),
)
@settings(max_examples=60, deadline=None, database=None)
def test_image_one_byte_tamper_never_verifies(index, pos, xor):
    f = fixtures.parser_files()[index]
    data = bytearray(f.data)
    pos %= len(data)
    data[pos] ^= xor
    v = image.Verifier(fixtures.lookup_key, lambda off, mv: None)
    at = image.SIGNED_END + image.SIG_SIZE  # a supplier signature follows the manufacturer's
    if f.data[at : at + 2] == image.SUPPLIER_TAG and at + 2 <= pos < at + image.TRAILER_SIZE:
        return  # the supplier signature is checked by policy, not by the Verifier
    with pytest.raises(image.ImageError):
        v.feed(bytes(data))
        v.finish()


def _regressions() -> list:
    out = []
    for path in sorted(REGRESSIONS.glob("*/*")):
        if path.suffix in (".xfail", ".md") or path.parent.name not in REPLAYS:
            continue
        marks = []
        reason = path.with_name(path.name + ".xfail")
        if reason.exists():
            marks = [pytest.mark.xfail(strict=True, reason=reason.read_text().strip())]
        out.append(pytest.param(path, marks=marks, id=f"{path.parent.name}/{path.name}"))
    return out or [pytest.param(None, marks=pytest.mark.skip(reason="no findings yet"))]


@pytest.mark.parametrize("path", _regressions())
def test_regression_replays_clean(path):
    REPLAYS[path.parent.name](path.read_bytes())


# --- the targets have teeth: broken code is caught --------------------------------------


def test_link_target_catches_an_oversize_payload(monkeypatch):
    real = link.Decoder.next

    def next_(self):
        f = real(self)
        return f if f is None else f[:3] + (f[3] * 400,)

    monkeypatch.setattr(link.Decoder, "next", next_)
    with pytest.raises(InvariantError):
        TARGETS["link_decoder"](link.encode(0, 1, 2, b"\x01"))


def test_image_target_catches_a_verifier_that_skips_the_signature(monkeypatch):
    monkeypatch.setattr(p256, "verify", lambda *a: True)
    data = bytearray(fixtures.parser_files()[0].data)
    data[30] ^= 1  # the header string: only the signature covers it
    with pytest.raises(InvariantError, match="never signed"):
        TARGETS["image_parser"](bytes(data))


def test_image_target_catches_a_verifier_that_skips_the_chain(monkeypatch):
    # a payload byte flipped (chunk 0), and a verifier whose link check passes anything
    monkeypatch.setattr(image, "LINK_SIZE", 0)
    data = bytearray(fixtures.parser_files()[0].data)
    data[300] ^= 1
    with pytest.raises(InvariantError, match="never signed"):
        TARGETS["image_parser"](bytes(data))


def test_reassembly_target_catches_an_unsigned_fragment_marked_done(monkeypatch):
    monkeypatch.setattr(p256, "verify", lambda *a: True)
    TARGETS["reassembly"](bytes([0, 0, 7]))  # the good fragment alone is fine
    # fragment 0 with a byte of its manifest's firmware_sha256 (file byte 108) flipped:
    # only the signature would catch it
    with pytest.raises(InvariantError, match="never signed"):
        TARGETS["reassembly"](bytes([1, 0, 108, 0, 0x55, 3]))


# --- runner ------------------------------------------------------------------------------

LIBFUZZER_LOG = """\
#2	INITED cov: 60 ft: 61 corp: 12/1994b exec/s: 0 rss: 52Mb
#9425	DONE   cov: 66 ft: 406 corp: 72/15020b lim: 511 exec/s: 1570 rss: 53Mb
Traceback (most recent call last):
KeyError: 'boom'

==18700== ERROR: libFuzzer: fuzz target exited
stat::number_of_executed_units: 9431
stat::average_exec_per_sec:     1571
"""


def test_runner_parses_libfuzzer_output():
    stats = runner.parse_libfuzzer(LIBFUZZER_LOG)
    assert stats == {"executions": 9431, "exec_per_s": 1571, "coverage": 66, "corpus": 72}
    assert runner.exception_line(LIBFUZZER_LOG) == "KeyError: 'boom'"


def test_runner_counts_only_fresh_artifacts(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "CRASHES", tmp_path)
    monkeypatch.setattr(runner, "ROOT", tmp_path.parent)
    (tmp_path / "zcl_decoder-slow-unit-1").write_bytes(b"")
    (tmp_path / "zcl_decoder-crash-2").write_bytes(b"")
    (tmp_path / "link_decoder-crash-3").write_bytes(b"")
    assert runner.new_findings("zcl_decoder", 0) == [f"{tmp_path.name}/zcl_decoder-crash-2"]


def test_main_hypothesis_engine_json(capsys):
    rc = fuzz_main(
        ["--seconds", "1", "--target", "zcl_decoder", "--engine", "hypothesis", "--json"]
    )
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert doc["results"][0]["engine"] == "hypothesis"
    assert doc["results"][0]["executions"] > 0
    assert doc["summary"].startswith("fuzz: 1 targets, ")


def test_seed_names_are_content_hashes():
    for target in TARGETS:
        for path in _corpus(target):
            assert path.name == hashlib.sha1(path.read_bytes()).hexdigest()
