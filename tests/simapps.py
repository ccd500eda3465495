"""Small app trees for sim-board tests (the agent's main.py is not needed to test the sim)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from hanota.paths import FIRMWARE
from hanota.sim import appimage, create
from hanota.sim.runner import SimBoard

PORT_FILES = (
    "__init__.py",
    "unix.py",
    "simflash.py",
    "slot.py",
    "otadata.py",
    "contract.py",
    "conformance.py",
)

# main.py bodies; {stage} is a host path holding an app to install on first boot
ECHO = """
from ports import make_port
port = make_port()
print("APP version=%x pending=%d" % (port.running_version(), port.pending_verify()))
port.confirm()
print("APP confirmed")
buf = bytearray(64)
while True:
    n = port.link.readinto(buf, 500)
    if n:
        port.link.write(buf[:n])
"""

# a trial boot arms the watchdog first, as firmware/main.py does: a crash that drops to the
# REPL then ends in a watchdog reset and a rollback
CRASH_FIRST_LINE = """
from ports import make_port
port = make_port()
if port.pending_verify():
    port.watchdog(port.board["watchdog_ms"])
raise RuntimeError("crash on the first line")
"""

NEVER_CONFIRM = """
import time
from ports import make_port
port = make_port()
if port.pending_verify():
    port.watchdog(port.board["watchdog_ms"])
print("APP version=%x pending=%d (never confirms)" % (port.running_version(), port.pending_verify()))
while True:
    time.sleep_ms(100)
"""

# stages the app at {stage} into the update slot once (remembered in the store), then resets
STAGER = """
from ports import make_port
port = make_port()
print("APP version=%x pending=%d" % (port.running_version(), port.pending_verify()))
port.confirm()
if port.store.get("staged") is None:
    f = open({stage!r}, "rb")
    buf = bytearray(4096)
    off = 0
    while True:
        n = f.readinto(buf)
        if not n:
            break
        port.erase(off // 4096)
        port.write(off, memoryview(buf)[:n])
        off += n
    port.check_app(off)
    port.store.put("staged", b"1")
    head = bytearray(12)
    port.read(0, head)  # the sim app header: version u32 at 8
    port.set_pending(int.from_bytes(head[8:12], "little"))
    print("APP staged %d bytes, resetting" % off)
    port.reset()
    print("APP reset returned")
import time
while True:
    time.sleep_ms(100)
"""

# boot 1 only: erase+write blocks 0 and 1 of the update slot (ops 1..4)
PATTERN = """
import json, os
from ports import make_port
port = make_port()
boot = json.load(open(os.getenv("HANOTA_BOOT")))["boot"]  # DIR/run/boot.json
print("APP boot=%d" % boot)
if boot == 1:
    port.erase(0)
    port.write(0, b"\\x11" * 4096)
    port.erase(1)
    port.write(4096, b"\\x22" * 4096)
    print("APP pattern written")
import time
while True:
    time.sleep_ms(100)
"""

CONFORMANCE = """
from ports import make_port
from ports.conformance import run_conformance
run_conformance(make_port(), otadata={otadata})
"""


def make_tree(root: Path, main: str) -> Path:
    """An app source tree: main.py, ports/ (unix side), otaclient/__init__.py and kvstore.py."""
    (root / "ports").mkdir(parents=True)
    (root / "otaclient").mkdir()
    for name in PORT_FILES:
        shutil.copy(FIRMWARE / "ports" / name, root / "ports" / name)
    for name in ("__init__.py", "kvstore.py"):  # the store, and the error class it raises
        shutil.copy(FIRMWARE / "otaclient" / name, root / "otaclient" / name)
    (root / "main.py").write_text(main)
    return root


def build_app(tmp: Path, name: str, main: str, version: int, board: dict) -> bytes:
    tree = make_tree(tmp / f"src-{name}", main)
    return appimage.build(appimage.collect(tree), version, board)


def make_board(tmp: Path, main: str = ECHO, version: int = 0x01000000,
               board: str = "sim-ppmid") -> Path:  # fmt: skip
    """A sim board directory whose factory app runs `main`."""
    directory = tmp / "board"
    create.create(directory, board, version, source=make_tree(tmp / "factory-src", main))
    return directory


def board_json(directory: Path) -> dict:
    return json.loads((directory / "board.json").read_text())


def wait_console(board: SimBoard, text: str, timeout: float = 20.0) -> str:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = board.console_text()
        if text in out:
            return out
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not on the console within {timeout}s:\n{board.console_text()}")
