"""Run each target for a set time under atheris (one subprocess each) and count results.

The corpus is copied from fuzz/corpus/<target> (kept in the repo) to build/fuzz/<target>,
where libFuzzer adds what it finds; crash, timeout and out-of-memory inputs are written
to fuzz/crashes/<target>-<kind>-<sha1>. libFuzzer stops a target at its first finding.
A signal that stops this process kills the target's process (subprocess.run does, on any
exception); the target gets SIGTERM from the kernel if this process dies any other way.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from hanota.paths import BUILD, ROOT
from hanota.stopping import die_with_parent

CORPUS = ROOT / "fuzz" / "corpus"
CRASHES = ROOT / "fuzz" / "crashes"
WORK = BUILD / "fuzz"
FINDING_KINDS = ("crash-", "timeout-", "oom-", "leak-")
GRACE_S = 120  # start-up and corpus loading, beyond -max_total_time


@dataclass
class Result:
    """One target's run."""

    target: str
    engine: str  # "atheris" or "hypothesis"
    seconds: float
    executions: int = 0
    exec_per_s: int = 0
    coverage: int = 0  # libFuzzer "cov:" (edges), 0 for hypothesis
    corpus: int = 0  # inputs in the working corpus at the end
    findings: list[str] = field(default_factory=list)  # artifact paths, repo-relative
    detail: str = ""  # the exception line of the finding, from the log
    error: str = ""  # the run itself failed (not a finding)
    log: str = ""

    def line(self) -> str:
        s = (
            f"fuzz: {self.target}: {self.executions} executions ({self.exec_per_s}/s) "
            f"in {self.seconds:.0f} s, cov {self.coverage}, corpus {self.corpus}, "
            f"{len(self.findings)} findings [{self.engine}]"
        )
        for f in self.findings:
            s += f"\n  finding: {f}"
        if self.detail:
            s += f"\n  exception: {self.detail}"
        if self.error:
            s += f"\n  error: {self.error}"
        return s


_STAT = re.compile(r"^stat::(\w+):\s*(\d+)", re.M)
_EXC = re.compile(r"^(\w+(?:Error|Exception|Exit|Interrupt)\b.*)$", re.M)
_PULSE = re.compile(r"^#(\d+)\s+\w+\s+cov: (\d+) ft: \d+ corp: (\d+)", re.M)


def parse_libfuzzer(text: str) -> dict[str, int]:
    """executions, exec_per_s, coverage, corpus from libFuzzer's stderr."""
    stats = {k: int(v) for k, v in _STAT.findall(text)}
    pulses = _PULSE.findall(text)
    last = pulses[-1] if pulses else ("0", "0", "0")
    return {
        "executions": stats.get("number_of_executed_units", int(last[0])),
        "exec_per_s": stats.get("average_exec_per_sec", 0),
        "coverage": int(last[1]),
        "corpus": int(last[2]),
    }


def exception_line(text: str) -> str:
    """The last `SomeError: message` line before libFuzzer's report (atheris' traceback)."""
    head = text.split("ERROR: libFuzzer", 1)[0]
    found = _EXC.findall(head)
    return found[-1][:300] if found else ""


def atheris_available() -> bool:
    try:
        import atheris  # noqa: F401
    except ImportError:
        return False
    return True


def _seed_workdir(target: str) -> Path:
    work = WORK / target
    work.mkdir(parents=True, exist_ok=True)
    for seed in (CORPUS / target).iterdir():
        shutil.copyfile(seed, work / seed.name)
    return work


def new_findings(target: str, since: float) -> list[str]:
    """Artifacts of `target` written at or after `since` (libFuzzer names them by SHA-1)."""
    if not CRASHES.is_dir():
        return []
    out = []
    for p in sorted(CRASHES.iterdir()):
        kind = p.name.removeprefix(target + "-")
        if kind != p.name and kind.startswith(FINDING_KINDS) and p.stat().st_mtime >= since:
            out.append(str(p.relative_to(ROOT)))
    return out


def run_atheris(target: str, seconds: int, max_len: int) -> Result:
    """One libFuzzer run of `target` for `seconds`; its log goes to build/fuzz/<target>.log."""
    from hanota.fuzz.targets import MAX_LEN

    work = _seed_workdir(target)
    CRASHES.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "hanota.fuzz.worker", target, str(work)]
    cmd += [f"-max_total_time={seconds}", "-print_final_stats=1", "-timeout=30"]
    cmd += [f"-artifact_prefix={CRASHES.relative_to(ROOT)}/{target}-", "-rss_limit_mb=2048"]
    cmd += [f"-max_len={max_len or MAX_LEN[target]}"]
    log = WORK / f"{target}.log"
    start = time.time()
    res = Result(target, "atheris", 0.0, log=str(log.relative_to(ROOT)))
    env = dict(os.environ, PYTHONHASHSEED="0")
    proc = None
    try:
        with log.open("w") as out:
            proc = subprocess.run(
                cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env,
                timeout=seconds + GRACE_S, check=False,
                preexec_fn=functools.partial(die_with_parent, signal.SIGTERM, os.getpid()),
            )  # fmt: skip
    except subprocess.TimeoutExpired:
        res.error = f"no result {seconds + GRACE_S} s after start; see {res.log}"
    res.seconds = time.time() - start
    text = log.read_text(errors="replace")
    for k, v in parse_libfuzzer(text).items():
        setattr(res, k, v)
    res.findings = new_findings(target, start - 1)
    if res.findings:
        res.detail = exception_line(text)
    if proc is not None and proc.returncode and not res.findings:
        res.error = f"exit status {proc.returncode} without an artifact; see {res.log}"
    return res


def run(targets: list[str], seconds: int, engine: str, max_len: int = 0) -> list[Result]:
    """Each target in turn for `seconds` with the chosen engine."""
    if engine == "hypothesis":
        from hanota.fuzz.hypo import run_hypothesis

        return [run_hypothesis(t, seconds) for t in targets]
    return [run_atheris(t, seconds, max_len) for t in targets]


def summary(results: list[Result]) -> str:
    execs = sum(r.executions for r in results)
    found = sum(len(r.findings) for r in results)
    return f"fuzz: {len(results)} targets, {execs} executions, {found} findings"
