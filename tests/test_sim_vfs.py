"""Issue 3: files deployed with mpremote outside /data survive a reboot, as they do on the
board's LittleFS vfs partition; the slot's main.py still runs (a frozen main.py wins on
an ESP32), and filesystem modules shadow the slot's ('' precedes '.frozen')."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from hanota.board import defs
from hanota.paths import FIRMWARE
from hanota.sim import create
from hanota.sim.appimage import build, collect
from hanota.sim.runner import SimBoard
from test_board_sim import mp

pytestmark = pytest.mark.micropython

SLOT_MAIN = """from ports import make_port
import time
port = make_port()
import who
print("MAIN from the slot; who =", who.WHO)
while True:
    time.sleep_ms(50)
"""


@pytest.fixture()
def sim_dir(tmp_path: Path) -> Path:
    app = tmp_path / "app"
    for pkg in ("otaclient", "ports"):
        shutil.copytree(FIRMWARE / pkg, app / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    (app / "main.py").write_text(SLOT_MAIN)
    (app / "who.py").write_text('WHO = "slot"\n')
    board = defs.load("sim-ppmid")
    create.create(tmp_path / "sim", "sim-ppmid", app=build(collect(app), 0x01000000, board))
    return tmp_path / "sim"


def booted(sb: SimBoard, n: int, marker: str) -> None:
    ev = sb.wait_for("boot", after=len(sb.events) if n > 1 else 0)
    assert ev["boot"] == n
    deadline = time.monotonic() + 20
    while sb.console_text().count(marker) < n:
        assert time.monotonic() < deadline, sb.console_text()
        time.sleep(0.05)
    time.sleep(0.3)  # past start-up before mpremote's Ctrl-C


def test_deployed_files_persist_across_reboots_and_shadow_the_slot(sim_dir: Path, tmp_path):
    note, who, main = tmp_path / "note.txt", tmp_path / "who.py", tmp_path / "main.py"
    note.write_text("kept")
    who.write_text('WHO = "fs"\n')
    main.write_text('print("MAIN from the filesystem")\n')
    marker = "MAIN from the slot"
    with SimBoard(sim_dir) as sb:
        booted(sb, 1, marker)
        assert "who = slot" in sb.console_text()
        mp(sb.console_path, "fs", "cp", str(note), str(who), str(main), ":.")  # cwd: "/" on a board
        mp(sb.console_path, "fs", "mkdir", ":lib", "+", "fs", "cp", str(note), ":lib/n2.txt")
        sb.power_cycle()  # a reboot: the slot is unpacked again, the filesystem stays
        booted(sb, 2, marker)
        listing = mp(sb.console_path, "fs", "ls", ":.")
        assert "note.txt" in listing and "who.py" in listing and "lib/" in listing, listing
        assert mp(sb.console_path, "fs", "cat", ":lib/n2.txt").strip() == "kept"
        out = mp(sb.console_path, "exec", "print(open('note.txt').read())")
        assert out.strip() == "kept"
    text = sb.console_text()
    # the slot's main.py ran again (a frozen main.py wins over the filesystem's) and its
    # `import who` found the deployed who.py first (the filesystem shadows the slot)
    assert "MAIN from the filesystem" not in text
    assert text.count(marker) == 2 and "who = fs" in text, text
    assert (sim_dir / "fs" / "note.txt").read_text() == "kept"


def test_a_new_board_has_an_empty_filesystem(sim_dir: Path):
    (sim_dir / "fs" / "stale.txt").write_text("from an older board")
    create.create(sim_dir, "sim-ppmid", source=FIRMWARE)
    assert list((sim_dir / "fs").iterdir()) == []
