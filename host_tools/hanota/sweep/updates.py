"""The updates the sweep cuts, and the images they need.

Every update starts from a fresh rig board (`hanota.rig.simboards.fresh`): the factory
app of this checkout at V1 in ota_0, blank otadata, and a LittleFS store holding only
the provisioning files ("factory-fresh"), or, for `half`, an identity without trust
anchors ("half-provisioned": provisioning stopped before trust.json got its keys).
`second` starts from a copy of a board that took the plain update cleanly ("updated
once": V2 runs from ota_1, otadata's second sector holds its entry) and goes to V3 in
ota_0. `delta` starts from a fresh board whose factory app is the delta's base (this
checkout padded to --size, `hanota rig update --factory-app`) and gets one delta file to
the same app with one module edited.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hanota import paths
from hanota.board import defs
from hanota.rig.factory import Images
from hanota.sim import appimage

V1, V2, V3 = 0x01000000, 0x02000000, 0x03000000
BOARD = "sim-ppmid"
# the new app arms the trial-boot watchdog as firmware/main.py does, then dies: without a
# watchdog a stock ESP32 (and the sim) would sit at the REPL and never roll back
CRASH_MAIN = """from ports import make_port
port = make_port()
if port.pending_verify():
    port.watchdog(port.board["watchdog_ms"])
raise RuntimeError("sweep: the new app crashes on its first line")
"""


@dataclass(frozen=True)
class Update:
    name: str
    what: str
    compress: bool = False
    crash: bool = False  # the new app raises on its first line: trial boot fails, rollback
    trusted: bool = True  # False: half-provisioned (identity, no trust anchors)
    start: str = "factory-fresh"
    # "every": each op of the reference run; "after-transfer": each op from the end of
    # the transfer on (activation, trial boot, rollback); "random": seeded multi-cut runs;
    # "cycles": seeded power cycles between operations (an update with no flash ops)
    cuts: str = "every"
    delta: bool = False  # one delta file from the factory app (the base) to the new app

    @property
    def ref_key(self) -> str:
        """Updates with the same image and start state share one reference run."""
        once = "2" if self.start == "updated-once" else ""
        kind = "d" if self.delta else "z" if self.compress else "p"
        return f"{kind}{'c' if self.crash else ''}{'' if self.trusted else 'h'}{once}"

    @property
    def versions(self) -> tuple[int, int]:
        """(the version running at the start, the one submitted)."""
        return (V2, V3) if self.start == "updated-once" else (V1, V2)

    @property
    def expect(self) -> str:
        """The outcome of the clean reference run."""
        return "rolled-back" if self.crash else "updated" if self.trusted else "refused"


UPDATES = {
    u.name: u
    for u in (
        Update("plain", "uncompressed, cut at every operation"),
        Update("compressed", "compressed (deflate), cut at every operation", compress=True),
        Update(
            "rollback",
            "crashing new app: cuts in activation, trial boot and rollback",
            crash=True,
            cuts="after-transfer",
        ),  # fmt: skip
        Update("multi", "uncompressed, several random cuts in a row (seeded)", cuts="random"),
        Update(
            "half",
            "half-provisioned (no trust anchor): refused; power cycles at hub events",
            trusted=False,
            start="half-provisioned",
            cuts="cycles",
        ),  # fmt: skip
        Update(
            "second",
            "second update: V2 runs from ota_1, V3 goes to ota_0; cut at every operation",
            start="updated-once",
        ),  # fmt: skip
        Update(
            "delta",
            "delta (one module edited) from the factory app, cut at every operation",
            compress=True,
            delta=True,
        ),  # fmt: skip
    )
}


@dataclass
class Built:
    """The OTA files of one update and what the new app is."""

    files: list[str]
    sizes: list[int]
    trust: list[str]
    new_version: int
    new_sha: str  # the app header's tree SHA-256 (hex): what the bootloader verifies
    factory_app: str | None = None  # the board starts with these app bytes (a delta's base)


def new_app(work: Path, crash: bool, size: int, version: int = V2,
            edit: str | None = None) -> bytes:  # fmt: skip
    """The new app: this checkout's firmware (or a crashing main.py) padded to `size`;
    with `edit`, that module gets a function appended (a one-module change)."""
    board = defs.load(BOARD)
    source = paths.FIRMWARE
    if edit is not None:
        files = [(p, d + b"\n\ndef _sweep_delta():\n    return 1\n" if p == edit else d)
                 for p, d in appimage.collect(source)]  # fmt: skip
        return appimage.build(files, version, board, pad_to=size)
    if crash:
        source = work / "src-crash"
        for pkg in ("ports", "otaclient"):
            (source / pkg).mkdir(parents=True, exist_ok=True)
        for f in (paths.FIRMWARE / "ports").glob("*.py"):  # the sim's port, for its watchdog
            if not f.name.startswith("esp32"):
                (source / "ports" / f.name).write_bytes(f.read_bytes())
        for name in ("__init__.py", "kvstore.py"):
            (source / "otaclient" / name).write_bytes(
                (paths.FIRMWARE / "otaclient" / name).read_bytes()
            )
        (source / "main.py").write_text(CRASH_MAIN)
    return appimage.build(appimage.collect(source), version, board, pad_to=size)


def build(update: Update, work: Path, size: int, max_size: int, images: Images) -> Built:
    new = update.versions[1]
    name = f"{update.ref_key}-{size}-{max_size}"
    base, factory = None, None
    if update.delta:  # a delta is one file: --max-size does not apply
        base = new_app(work, False, size, update.versions[0])
        factory = work / f"{name}-factory.bin"
        factory.write_bytes(base)
        app = new_app(work, False, size, new, edit="otaclient/alerts.py")
    else:
        app = new_app(work, update.crash, size, new)
    files = images.build(new, board=BOARD, payload=app, max_size=max_size,
                         compress=update.compress, name=name, base=base)  # fmt: skip
    head = appimage.parse_header(app)
    return Built(
        files=[str(f) for f in files],
        sizes=[f.stat().st_size for f in files],
        trust=[str(images.pub_path)] if update.trusted else [],
        new_version=new,
        new_sha=head.sha256.hex(),
        factory_app=str(factory) if factory is not None else None,
    )


def describe(update: Update, built: Built) -> dict[str, Any]:
    return {
        "what": update.what,
        "start": update.start,
        "compressed": update.compress,
        "delta": update.delta,
        "fragments": len(built.files),
        "file_bytes": built.sizes,
    }
