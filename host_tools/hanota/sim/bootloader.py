"""The sim board's second-stage bootloader: ESP-IDF's otadata rules with app rollback.

1. an entry still PENDING_VERIFY means the last trial boot never confirmed: ABORTED;
2. the usable entry (CRC ok, not INVALID/ABORTED) with the highest seq picks the slot;
3. a NEW entry becomes PENDING_VERIFY and boots once (the trial boot);
4. no usable entry: ota_0 then ota_1 (no factory partition); the app must verify, else
   the other slot boots; neither -> no bootable app. Unpacking is the runner's job.
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
    """Run the boot rules on the flash (writing otadata unless `write` is False)."""
    events: list[dict] = []
    entries = list(flash.otadata())
    for i, ent in enumerate(entries):
        if ent.valid and ent.state == otadata.PENDING_VERIFY:
            entries[i] = otadata.Entry.make(ent.seq, otadata.ABORTED)
            events.append({"event": "rollback", "slot": f"ota_{ent.slot}", "seq": ent.seq})
            if write:
                flash.write_otadata(i, entries[i])
    chosen = otadata.select((entries[0], entries[1]))
    pending = False
    order = [0, 1]
    if chosen >= 0:
        ent = entries[chosen]
        order = [ent.slot, 1 - ent.slot]
        if ent.state == otadata.NEW:
            entries[chosen] = otadata.Entry.make(ent.seq, otadata.PENDING_VERIFY)
            if write:
                flash.write_otadata(chosen, entries[chosen])
        pending = entries[chosen].state == otadata.PENDING_VERIFY
    return _load(flash, order, pending, events)


def _load(flash: FlashFile, order: list[int], pending: bool, events: list[dict]) -> BootDecision:
    for n, slot in enumerate(order):
        try:
            head, tree = read_app(flash, slot)
        except appimage.AppError as exc:
            events.append({"event": "bad_app", "slot": f"ota_{slot}", "error": str(exc)})
            continue
        # a trial boot that fell back to the other slot is no trial of this app
        return BootDecision(slot, head.version, pending and n == 0, tree, events)
    raise NoBootableApp("no bootable app: neither ota_0 nor ota_1 holds an app that verifies")


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
