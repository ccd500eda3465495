"""labgrid-client, run as a command against the lab's coordinator.

Each call is a fresh `labgrid-client -x COORDINATOR ...` (about 0.6 s): nothing here holds
a session that a coordinator restart would break.
"""

from __future__ import annotations

import os
import re
import subprocess

from ..paths import venv_bin

# `labgrid-client -v resources`: "    Resource 'console' (host1/sim-ppmid-1/NetworkSerialPort[/console]):"
_RESOURCE = re.compile(r"^\s*Resource '([^']+)' \(([^/]+)/([^/]+)/([^/\[]+)\[/")


class ClientError(RuntimeError):
    pass


def run(coordinator: str, *args: str, place: str | None = None, timeout: float = 30.0,
        check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:  # fmt: skip
    """`labgrid-client -x COORDINATOR [-p PLACE] ARGS` (with `env` added to this process's
    environment, e.g. LG_USERNAME); ClientError when it fails and `check` is set (its
    stderr in the message)."""
    cmd = [venv_bin("labgrid-client"), "-x", coordinator]
    if place is not None:
        cmd += ["-p", place]
    res = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=timeout,
                         stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})})  # fmt: skip
    if check and res.returncode != 0:
        raise ClientError(f"{' '.join(cmd[1:] + list(args))}: exit {res.returncode}: "
                          f"{(res.stderr or res.stdout).strip()[-600:]}")  # fmt: skip
    return res


def places(coordinator: str) -> list[str]:
    """The names of the coordinator's places."""
    out = run(coordinator, "places").stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def resources(coordinator: str) -> set[tuple[str, str, str, str]]:
    """Every available resource as (exporter, group, cls, name)."""
    out = run(coordinator, "-v", "resources").stdout
    found = set()
    for line in out.splitlines():
        m = _RESOURCE.match(line)
        if m:
            found.add((m[2], m[3], m[4], m[1]))
    return found


def ensure_place(coordinator: str, name: str, patterns: list[str],
                 existing: list[str]) -> None:  # fmt: skip
    """Place `name` with (at least) these matches; a match it has already is skipped."""
    if name not in existing:
        run(coordinator, "create", place=name)
    run(coordinator, "add-match", *patterns, place=name)
