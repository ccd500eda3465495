"""The sim board's second-stage bootloader: ports/otadata.boot (ESP-IDF v5.5.1 with app
rollback) run on flash.bin, writing otadata as the real one does; unpacking is the runner's.

What the rule decides (firmware/ports/otadata.py has the ESP-IDF sources): a PENDING_VERIFY
entry found at reset becomes ABORTED (the last trial never confirmed); the usable entry with
the highest seq picks the slot and a NEW one becomes PENDING_VERIFY (the trial boot); blank
otadata boots ota_0 and writes {seq 1, VALID} into sector 0; an app that fails its load-time
check (here: header, board and tree hash) makes the other slot boot, otadata untouched.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import appimage, otadata
from .flash import FlashFile


class NoBootableApp(Exception):
    """Neither app slot holds an app that verifies."""


@dataclass
class BootDecision:
    slot: int
    version: int
    pending_verify: bool
    tree: bytes
    events: list[dict] = field(default_factory=list)


def decide(flash: FlashFile, write: bool = True) -> BootDecision:
    """Run the boot rule on the flash (writing otadata unless `write` is False)."""
    events: list[dict] = []
    apps: dict[int, tuple[appimage.AppHeader, bytes]] = {}

    def loads(slot: int) -> bool:
        try:
            apps[slot] = read_app(flash, slot)
        except appimage.AppError as exc:
            events.append({"event": "bad_app", "slot": f"ota_{slot}", "error": str(exc)})
            return False
        return True

    e0, e1 = flash.otadata()
    slot, writes, trial = otadata.rules().boot(e0.rule, e1.rule, loads)
    for sector, seq, state in writes:
        if state == otadata.ABORTED:
            events.insert(0, {"event": "rollback", "slot": f"ota_{otadata.rules().slot_of(seq)}",
                              "seq": seq})  # fmt: skip
        if write:
            flash.write_otadata(sector, otadata.Entry.make(seq, state))
    if slot < 0:
        raise NoBootableApp("no bootable app: neither ota_0 nor ota_1 holds an app that verifies")
    head, tree = apps[slot]
    return BootDecision(slot, head.version, trial, tree, events)


def read_app(flash: FlashFile, slot: int) -> tuple[appimage.AppHeader, bytes]:
    """Header and verified tree of the app in ota_<slot>, for this board."""
    offset, size = flash.part(f"ota_{slot}")
    head = appimage.parse_header(flash.read(offset, appimage.HEADER_LEN))
    if head.total > size:
        raise appimage.AppError(f"app length {head.total} exceeds the slot ({size})")
    board = flash.board
    if (head.manufacturer_code, head.image_type) != (
        board["manufacturer_code"],
        board["image_type"],
    ):
        raise appimage.AppError("app built for another board (manufacturer code / image type)")
    return appimage.verify(flash.read(offset, head.total))
