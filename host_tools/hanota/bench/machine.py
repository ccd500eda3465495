"""Facts about the machine a run measured on: CPU model, cores, Python and MicroPython."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from typing import Any

from hanota import paths


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def micropython_version() -> str:
    code = (
        "import sys; v = sys.implementation.version; print('%d.%d.%d' % v[:3], *v[3:], sys.version)"
    )
    # e.g. "1.29.0 preview 3.4.0; MicroPython 9458e3a23f on 2026-07-05"
    try:
        res = subprocess.run([paths.micropython(), "-c", code], capture_output=True,
                             text=True, timeout=30)  # fmt: skip
        ver, _, build = res.stdout.strip().partition(";")
        words = ver.split()  # "1.29.0", "preview" (a release tag when present), CPython-ish version
        ver = "-".join(words[:2]) if len(words) > 2 else words[0] if words else ""
        return f"{ver} ({build.strip()})" if build else ver or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _pkg(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


def facts() -> dict[str, Any]:
    mem = 0
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            mem = int(f.readline().split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_mb": mem,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "micropython": micropython_version(),
        "ecdsa": _pkg("ecdsa"),
        "cryptography": _pkg("cryptography"),
        "openssl": _openssl(),
        "mpremote": _pkg("mpremote"),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "argv": " ".join(["hanota", *sys.argv[1:]]),
    }


def _openssl() -> str:
    try:
        from cryptography.hazmat.backends.openssl import backend

        return backend.openssl_version_text()
    except Exception:  # noqa: BLE001 - a fact for the report only
        return "unknown"
