"""Random operation sequences and power cuts through ports/esp32.py on the ESP32 fake (CPython,
hypothesis): stage, check_app, set_pending, confirm, reset, a hanging trial, and a power cut at
any flash operation, the bootloader's own otadata writes included. After every step:

- the board boots a slot whose image passes ESP-IDF's load-time check (never no app);
- an unconfirmed trial never survives two boots (the next boot runs the other slot);
- confirm() never makes VALID an entry naming a slot that is not running;
- pending_verify() right after boot says whether the bootloader started a trial;
- running_version() is None or the version set_pending recorded for the running slot's image.
"""

from __future__ import annotations

import os
import sys

import pytest
from hanota.board import defs
from hanota.paths import FIRMWARE
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_esp32_image import esp_image

sys.path.insert(0, str(FIRMWARE))
import esp32_fake as f  # noqa: E402
import esp_image_verify as iv  # noqa: E402
from ports import esp32_image as ei  # noqa: E402
from ports import otadata as od  # noqa: E402
from ports.slot import PortError  # noqa: E402

BOARD = defs.load("ihd-esp32")
V1 = esp_image(version=b"")
IMAGES = [
    esp_image(version=b"", body=9000),
    esp_image(version=b"", body=5000),
    esp_image(version=b"", body=7000, checksum_xor=0x21),  # check_app yes, set_boot no
    os.urandom(6000),  # check_app no
]


def reader(slot):
    def read(off, buf):
        buf[:] = f.read_slot(slot, len(buf), off)

    return read


class Life:
    """One board through a sequence; `step` runs one operation and checks the invariants."""

    def __init__(self):
        self.saved = {m: sys.modules.get(m) for m in ("esp32", "machine")}
        f.install(BOARD)
        self.mod = f.port_module()
        f.flash_app("ota_0", V1)
        self.recorded = set()  # (slot, image sha256 hex, version) set_pending may have recorded
        self.staged = None
        self.after_boot(f.power_on())

    def close(self):
        for m, mod in self.saved.items():
            if mod is None:
                sys.modules.pop(m, None)
            else:
                sys.modules[m] = mod

    # -- boots -------------------------------------------------------------------------
    def after_boot(self, slot):
        """A boot finished: check it, then run main.py's start (watchdog on a trial boot)."""
        r = f.B.running
        assert r[4] == "ota_" + str(slot)
        assert f.image_ok(r, load_mode=True), ("booted slot holds no loadable image", slot)
        boots = f.B.boots
        if len(boots) >= 2 and boots[-2][1] and not self.confirmed:
            assert boots[-1][0] != boots[-2][0], ("unconfirmed trial survived a reboot", boots)
        self.confirmed = False
        self.staged = None
        self.port = self.mod.Esp32Port(BOARD, store=f.Store())
        assert self.port.pending_verify() == f.B.trial, (f.entries(), boots)
        version = self.port.running_version()
        if version is not None:
            key = (slot, f.slot_hash(slot).hex(), version)
            assert key in self.recorded, ("running_version not recorded for this image", key)
        if f.B.trial:
            self.port.watchdog(BOARD["watchdog_ms"])

    def reboot(self, power=False):
        try:
            slot = f.power_on() if power else f.boot()
        except f.PowerCut:  # the bootloader's own otadata write was cut
            slot = f.power_on()
        self.after_boot(slot)

    # -- operations --------------------------------------------------------------------
    def stage(self, i):
        data = IMAGES[i]
        run_hash = f.slot_hash(self.port._run_slot)
        try:
            for b in range((len(data) + 4095) // 4096):
                self.port.erase(b)
            self.staged = data
            for off in range(0, len(data), 1024):
                self.port.write(off, data[off : off + 1024])
        except PortError as e:
            assert e.code == "TRIAL" and f.B.trial and not self.confirmed, e
        assert f.slot_hash(self.port._run_slot) == run_hash, "staging touched the running slot"

    def check_app(self):
        try:
            self.port.check_app(len(self.staged) if self.staged else 4096)
        except ValueError:
            pass

    def set_pending(self, version):
        slot = 1 - self.port._run_slot
        try:  # what the slot holds now, whatever this sequence staged (or did not)
            digest = ei.appended_hash(reader(slot), 0x180000)
            self.recorded.add((slot, digest.hex(), version))
        except ValueError:
            pass
        try:
            self.port.set_pending(version)
        except PortError as e:
            assert e.code in ("VALIDATE_FAILED", "ARM_FAILED"), e
            assert e.code == "VALIDATE_FAILED" or (f.B.trial and not self.confirmed), e

    def confirm(self):
        before = f.entries()
        self.port.confirm()
        after = f.entries()
        for b, a in zip(before, after, strict=True):
            if a != b and a[1] == od.VALID:
                assert od.slot_of(a[0]) == self.port._run_slot, (before, after)
        self.confirmed = self.confirmed or (before != after)

    def hang(self):
        try:
            f.advance(24 * 3600 * 1000)
        except f.Reset:
            pass
        self.reboot()

    def step(self, op):
        name, arg = op
        try:
            if name == "cut":
                f.B.cut_at = f.B.ops + arg
            elif name == "stage":
                self.stage(arg)
            elif name == "check_app":
                self.check_app()
            elif name == "set_pending":
                self.set_pending(arg)
            elif name == "confirm":
                self.confirm()
            elif name == "reset":
                self.reboot()
            elif name == "hang":
                self.hang()
        except f.PowerCut:
            self.reboot(power=True)


OPS = st.one_of(
    st.tuples(st.just("cut"), st.integers(0, 8)),
    st.tuples(st.just("stage"), st.integers(0, len(IMAGES) - 1)),
    st.tuples(st.just("check_app"), st.none()),
    st.tuples(st.just("set_pending"), st.integers(1, 0xFFFFFFFF)),
    st.tuples(st.just("confirm"), st.none()),
    st.tuples(st.just("reset"), st.none()),
    st.tuples(st.just("hang"), st.none()),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(OPS, min_size=1, max_size=30))
# sequences that once broke an invariant, always run: confirm after arming; arming twice in a
# boot; staging over, or arming, the rollback slot on a trial boot; a trial that hangs
@example([("stage", 0), ("set_pending", 1), ("confirm", None)])
@example([("stage", 0), ("set_pending", 1), ("set_pending", 2), ("reset", None)])
@example([("stage", 0), ("set_pending", 1), ("reset", None), ("stage", 2)])
@example([("stage", 0), ("set_pending", 1), ("reset", None), ("set_pending", 1), ("reset", None)])
@example([("stage", 0), ("set_pending", 1), ("reset", None), ("hang", None)])
def test_random_sequences_with_power_cuts_keep_the_invariants(ops):
    life = Life()
    try:
        for op in ops:
            life.step(op)
        life.reboot()
    finally:
        life.close()


UPDATE = [("stage", 0), ("check_app", None), ("set_pending", 0x0200), ("reset", None)]
UPDATE += [("confirm", None), ("reset", None)]


def _clean_ops() -> int:
    life = Life()
    try:
        start = f.B.ops
        for op in UPDATE:
            life.step(op)
        return f.B.ops - start
    finally:
        life.close()


@pytest.mark.parametrize("cut", range(_clean_ops() + 1))
def test_update_cut_at_every_flash_operation_boots_old_or_new(cut):
    life = Life()
    try:
        life.step(("cut", cut))
        for op in UPDATE:
            life.step(op)
        life.reboot()
        slot = f.B.running[4]
        version = life.port.running_version()
        assert (slot, version) in (("ota_0", None), ("ota_1", 0x0200)), (cut, slot, version)
    finally:
        life.close()


def test_clean_update_ends_on_the_new_slot_confirmed():
    life = Life()
    try:
        for op in UPDATE:
            life.step(op)
        life.reboot()
        assert f.B.boots[-3:] == [(1, True), (1, False), (1, False)]
        assert life.port.running_version() == 0x0200
        assert iv.verify is not None
    finally:
        life.close()
