"""A board in a labgrid place, on any host: the third RigBoard.

labgrid's own client does the lab's part: `labgrid-client acquire/release` (the place is
held for this user and host, or refused with labgrid's reason), and a `labgrid.Environment`
whose target holds a `RemotePlace` expands the place's exported resources. What the rig
needs of them: the `NetworkSerialPort`s named `console` and `han` (raw TCP endpoints,
opened as `socket://HOST:PORT`) and a power driver (`PowerProtocol`, e.g. labgrid's
NetworkPowerDriver over a `NetworkPowerPort`).

The strategy, off -> flashed -> provisioned -> running, for a sim board: power on; write
the factory app into the slot that does not run and make it the boot slot (the writes
esptool and esp_ota_set_boot_partition make on an ESP32, here over the console's REPL with
mpremote), format the agent's store; power cycle; push the identity with mpremote (what
`hanota board provision` does); power off; and, once the hub serves its HAN link
(`attach`), power on into the agent. labgrid's client runs its own
event loop, so every labgrid call here is made outside the rig's (before it starts, or in
a worker thread).
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hanota.link.faults import Faults

from ..output import CommandError, log
from .boards import ConsoleRead
from .session import BoardLink, RigHub

BOOT_S = 2.0  # MicroPython past start-up (its SIGINT handler set) before mpremote's Ctrl-C
CLIENT_TIMEOUT_S = 60.0
_LABGRID = threading.Lock()  # labgrid's client loop runs in the calling thread: one at a time

# Over the console's REPL on a sim board: the app in FACTORY_FILE (copied there first)
# into the slot that does not run, that slot VALID in otadata with the sequence number
# esp_ota_set_boot_partition would give it (ports/otadata.arm), the agent's store formatted.
# The device build folds const() names away: the sector, entry length and VALID state come
# from the host's reading of the same rules (hanota.sim.otadata).
_FLASH = """
import json, os, vfs
from ports.simflash import Flash, Partition
from ports import otadata as od
SECTOR = {sector}
b = json.load(open(os.getenv("HANOTA_BOOT")))
P = b["partitions"]
f = Flash(b["flash"], b.get("ops"))
s = 1 - b["slot_index"]
off, size = P["ota_%d" % s]
for a in range(0, size, SECTOR):
    f.erase(off + a)
src = open({name!r}, "rb")
buf = bytearray(SECTOR)
n = 0
while True:
    k = src.readinto(buf)
    if not k:
        break
    f.write(off + n, memoryview(buf)[:k])
    n += k
src.close()
os.remove({name!r})
ota = P["otadata"][0]
e = bytearray({entry_len})
f.read(ota, e)
e0 = od.unpack(e)
f.read(ota + SECTOR, e)
e1 = od.unpack(e)
i, seq, _new = od.arm(e0, e1, s)
f.erase(ota + i * SECTOR)
f.write(ota + i * SECTOR, od.pack(seq, {valid}))
try:
    vfs.umount("/data")
except OSError:
    pass
vfs.VfsLfs2.mkfs(Partition(f, P["agent"][0], P["agent"][1]))
print("flashed", n, "slot", s)
"""


def client(coordinator: str, *args: str, env: dict[str, str] | None = None) -> str:
    """`labgrid-client -x COORDINATOR ARGS...` (hanota.lab.client.run); its stdout, or
    CommandError (exit 1: the lab said no, e.g. a place held by someone else) with
    labgrid's own message."""
    from hanota.lab.client import run

    res = run(coordinator, *args, timeout=CLIENT_TIMEOUT_S, check=False, env=env)
    if res.returncode != 0:
        why = (res.stderr.strip().splitlines() or [f"exit {res.returncode}"])[-1]
        raise CommandError(f"labgrid-client {' '.join(args)}: {why}", code=1)
    return res.stdout


def places(coordinator: str, patterns: list[str]) -> list[str]:
    """The places named by `patterns` (names or globs), each once, in the order given;
    CommandError for a pattern that matches none."""
    known = client(coordinator, "places").split()
    out: list[str] = []
    for pat in patterns:
        hit = fnmatch.filter(known, pat)
        if not hit:
            raise CommandError(f"no labgrid place matches {pat!r} (places: {' '.join(known)})", 1)
        out += [p for p in hit if p not in out]
    return out


@contextmanager
def acquired(coordinator: str, names: list[str]) -> Iterator[None]:
    """Hold the places for the block; released after. A place someone else holds fails
    the whole set before anything is touched (and releases what was taken)."""
    got: list[str] = []
    try:
        for name in names:
            client(coordinator, "-p", name, "acquire")
            got.append(name)
        yield
    finally:
        for name in reversed(got):
            try:
                client(coordinator, "-p", name, "release")
            except CommandError as exc:
                log(f"rig: {exc}")


def environment(coordinator: str, names: list[str], directory: Path) -> Any:
    """A labgrid Environment with one target per place (a RemotePlace and a power
    driver), as a lab's own env file would say; the file is kept in `directory`."""
    import yaml
    from labgrid import Environment

    targets = {
        n: {"resources": {"RemotePlace": {"name": n}}, "drivers": {"NetworkPowerDriver": {}}}
        for n in names
    }
    doc = {"targets": targets, "options": {"coordinator_address": coordinator}}
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "labgrid-env.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return Environment(config_file=str(path))


def close_session() -> None:
    """End this process's labgrid client session (RemotePlace's manager keeps one per
    process, with gRPC threads): call from the thread that made the targets, once done."""
    from labgrid.resource.common import ResourceManager
    from labgrid.resource.remote import RemotePlaceManager

    mgr = ResourceManager.instances.pop(RemotePlaceManager, None)
    if mgr is None or mgr.session is None:
        return
    with contextlib.suppress(Exception):  # a coordinator already gone has nothing to close
        mgr.loop.run_until_complete(mgr.session.stop())
        mgr.loop.run_until_complete(mgr.session.close())


class LabgridBoard(ConsoleRead):
    """The board of one labgrid target (a RemotePlace's resources and its drivers)."""

    def __init__(self, target: Any, board: str):
        from labgrid.resource import NetworkSerialPort

        self.target, self.board_name = target, board
        self.name = _place_name(target)
        self.record: dict[str, Any] = {}
        self.console_url = _url(target.get_resource(NetworkSerialPort, name="console"))
        self.han_url = _url(target.get_resource(NetworkSerialPort, name="han"))
        self._power = target.get_driver("PowerProtocol")

    # the strategy: off -> flashed -> provisioned -> running
    def adopt(self, record: dict[str, Any]) -> None:
        """A board flashed and provisioned beforehand (a real one: `hanota board flash
        --port rfc2217://HOST:PORT`, esptool resetting the chip through RFC 2217), whose
        device record is `record`: left off, its console read, for `attach` to boot."""
        self.record = record
        self._read_console_then_off()

    def _read_console_then_off(self) -> None:
        """Open the console for the run and leave the board off: `attach` powers it on
        once its link is served. An agent whose queries go unanswered for 30 s waits an
        hour before the next (its query interval), and a lab endpoint with no client drops
        what the board sends; booted only after the hub listens, the agent's announce,
        its first query and its idle heap report (on the console) all arrive."""
        self.power(False)
        self.read_console(self.console_url)
        self.state = "provisioned"

    def bring_up(self, app: bytes, ident: Any, record: dict[str, Any]) -> None:
        """Flash `app` (a sim app image), provision `ident`; left off for `attach`."""
        from hanota.board import actions, deploy

        self.power(True)
        time.sleep(BOOT_S)
        with tempfile.TemporaryDirectory(prefix="hanota-lg-") as tmp:
            app_path = Path(tmp) / "factory.app"
            app_path.write_bytes(app)
            name = "_factory.app"
            script = Path(tmp) / "flash_slot.py"
            script.write_text(_flash_code(name))
            cmd = deploy.connect(self.console_url, True) + [
                "fs", "cp", str(app_path), f":{name}", "+", "run", str(script)]  # fmt: skip
            secs = deploy.run([cmd], f"flash {self.name}", timeout=120)
        self.state = "flashed"
        log(f"rig: {self.name}: factory app ({len(app)} bytes) flashed in {secs:.1f} s")
        self.power_cycle()
        time.sleep(BOOT_S)
        actions.push_store(ident, self.console_url, True, False)
        self.record = record
        self._read_console_then_off()

    async def attach(self, rig: RigHub, faults: Faults | None = None) -> BoardLink:
        """Serve the board's HAN link, then power it on into the agent (labgrid's calls
        off the rig's event loop)."""
        link = await rig.link_stream(self, self.han_url)
        await asyncio.to_thread(self.power, True)
        self.state = "running"
        return link

    def power(self, on: bool) -> None:
        with _LABGRID:
            if on:
                self._power.on()
            else:
                self._power.off()
                self.state = "off"

    def facts(self) -> dict[str, Any]:
        return {"place": self.name, **super().facts()}


def brought_up(b: LabgridBoard, *, trust: list[Path], suppliers: list[str], seed: str,
               short_addr: int = 1, app: bytes | None = None,
               factory_version: int = 0x01000000, heap_report: bool = True) -> LabgridBoard:  # fmt: skip
    """`b` flashed with the factory app (`app`, else built from this checkout at
    `factory_version`), provisioned with a new identity, running the agent. Boards made in
    one thread (labgrid's client session is that thread's) may be brought up in several."""
    from hanota.board import defs
    from hanota.sim import create

    from . import heap
    from .factory import device

    board = b.board_name
    ident, record = device(board, suppliers, seed=seed, short_addr=short_addr, anchors=trust)
    ident.agent_config = heap.with_report(None) if heap_report else None
    app = app if app is not None else create.factory_app(defs.load(board), factory_version, None)
    b.bring_up(app, ident, record)
    return b


def _place_name(target: Any) -> str:
    """The place a target's RemotePlace names (an env file's target is often `main`)."""
    from labgrid.resource import RemotePlace

    places = [r for r in target.resources if isinstance(r, RemotePlace)]
    return places[0].name if places else target.name


def _flash_code(name: str) -> str:
    from hanota.sim import otadata

    return _FLASH.format(name=name, sector=otadata.SECTOR, entry_len=32, valid=otadata.VALID)


def _url(port: Any) -> str:
    if getattr(port, "protocol", "rfc2217") != "raw":
        return f"rfc2217://{port.host}:{port.port}"
    return f"socket://{port.host}:{port.port}"
