"""The hanota command works from any directory, by absolute path, without the venv on PATH."""

import os
import subprocess
import sys
from pathlib import Path

HANOTA = str(Path(sys.executable).parent / "hanota")


def run(*args, cwd="/"):
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV",)}
    env["PATH"] = "/usr/bin:/bin"
    return subprocess.run([HANOTA, *args], capture_output=True, text=True, cwd=cwd, env=env)


def test_help_from_root_directory_without_venv_on_path():
    res = run("--help")
    assert res.returncode == 0, res.stderr
    assert "usage: hanota" in res.stdout


def test_venv_tools_are_found_from_the_install():
    from hanota import paths

    assert Path(paths.micropython()).exists()
    assert Path(paths.mpremote()).exists()
    assert (paths.FIRMWARE / "otaclient").is_dir()
