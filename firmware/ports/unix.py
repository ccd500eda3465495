"""The simulated board's port: flash.bin slots and otadata, a pty HAN link, LittleFS at /data.
MicroPython unix port only (no machine/esp32); the host runner plays bootloader and watchdog.

The runner (hanota.sim.runner) writes run/boot.json (HANOTA_BOOT) at every boot: the board,
the running slot, flash.bin and the partitions, the HAN pty and DIR/ops, the control file
through which the port counts flash operations, asks for a reset and arms and feeds the
watchdog. Boot selection is ports/otadata.py's, the update slot is ports/slot.py's.
"""

import hashlib
import json
import os
import select
import struct
import time

from micropython import const
from otaclient.kvstore import KVStore

from ports import let_go, slot
from ports.simflash import FED, SECTOR, WATCHDOG, Flash, Partition
from ports.slot import PortError

APP_MAGIC = b"HSAP"
APP_HEADER = "<4sHHII32sHH12x"  # magic, format, header_len, version, tree_len, sha256, mfr, type
APP_HEADER_LEN = const(64)
# what the agent and main.py read of the board: the rest would be heap for nothing
_BOARD_KEYS = ("name", "manufacturer_code", "image_type", "hw_version", "console", "watchdog_ms")


class Port:
    """The port contract (ports/contract.py) on a sim board. Few attributes: the agent runs
    in a 64 KB heap and a bigger instance dict costs a bigger table."""

    block_size = SECTOR

    def __init__(self, board, boot=None):
        if boot is None:
            with open(os.getenv("HANOTA_BOOT") or "boot.json") as f:
                boot = json.load(f)
        parts = boot["partitions"]
        self.board = {k: board[k] for k in _BOARD_KEYS if k in board}
        self._flash = f = Flash(boot["flash"], boot.get("ops"))
        run = boot["slot_index"]
        self._run = (run, parts["ota_%d" % run][0])  # the running slot: index, flash offset
        upd_off, upd_size = parts["ota_%d" % (1 - run)]
        self._dev = Partition(f, upd_off, upd_size)  # refuses programmed bytes itself
        self.slot_size = upd_size
        self._boot_state(parts["otadata"][0])
        self._console = self.board.get("console") == "on"
        # an unset clock reads as a fresh ESP32's: its RTC starts at 2000-01-01 (ZigBee 0)
        # at power-on, so now() counts seconds since this boot until set_now()
        self._clock = -time.time()
        self._wd = None  # once armed: [timeout ms, last feed write (ticks), feed count]
        if boot.get("han_fd") is None:
            raise PortError("NO_LINK", "boot.json has no HAN link")
        self.link = Link(boot["han_fd"])
        self.store = _mount_store(f, parts["agent"], boot.get("store", "/data"))

    # update slot (ports/slot.py: range and erased checks; the sim flash refuses programmed
    # bytes itself, so no scratch is lent for a second read)
    def erase(self, block):
        slot.erase(self._dev, self.slot_size, block)

    def write(self, offset, buf):
        slot.write(self._dev, self.slot_size, offset, buf)

    def read(self, offset, buf):
        slot.read(self._dev, self.slot_size, offset, buf)

    def read_running(self, offset, buf):
        if offset < 0 or offset + len(buf) > self.slot_size:  # the two slots are one size
            raise PortError("BAD_RANGE", "%d+%d outside the running slot" % (offset, len(buf)))
        self._flash.read(self._run[1] + offset, buf)

    def check_app(self, length):
        """Raise PortError unless the update slot's first `length` bytes are a sim app for
        this board whose tree hash matches its header."""
        if length < APP_HEADER_LEN or length > self.slot_size:
            raise PortError("BAD_APP", "app length %d out of range" % length)
        hdr = memoryview(self._flash.buf)[:APP_HEADER_LEN]
        self.read(0, hdr)
        magic, fmt, hlen, version, tree, digest, mfr, typ = struct.unpack_from(APP_HEADER, hdr)
        if magic != APP_MAGIC or fmt != 2 or hlen != APP_HEADER_LEN:
            raise PortError("BAD_APP", "not a sim app image")
        if mfr != self.board["manufacturer_code"] or typ != self.board["image_type"]:
            raise PortError("BAD_APP", "app for another board")
        if APP_HEADER_LEN + tree != length:
            raise PortError("BAD_APP", "app length mismatch")
        h = hashlib.sha256()
        mv = memoryview(self._flash.buf)
        off = APP_HEADER_LEN
        while tree:
            k = min(tree, len(mv))
            self.read(off, mv[:k])
            h.update(mv[:k])
            off += k
            tree -= k
        if h.digest() != digest:
            raise PortError("BAD_APP", "app hash mismatch")
        return version  # the app header's: the agent checks it against the manifest

    # otadata (ports/otadata.py: ESP-IDF's rules) runs once, in the constructor, before the
    # agent loads: the trial state and the two writes this boot may make (confirm, arm) are
    # kept as ready entries and the rules let go, so none of them is in the heap while the
    # agent runs, nor loaded again when the heap is full (confirm, activation). The entries
    # change only at a boot (the bootloader) or by these writes, which leave them valid:
    # confirm rewrites the active entry with its own seq, and arming twice writes the same.
    def _boot_state(self, ota):
        from ports import otadata as od

        ent = memoryview(self._flash.buf)[: od.ENTRY_LEN]
        self._flash.read(ota, ent)
        e0 = od.unpack(ent)
        self._flash.read(ota + SECTOR, ent)
        e1 = od.unpack(ent)
        act = od.select(e0, e1)
        e = (e0, e1)[act] if act >= 0 else None
        trial = e is not None and od.slot_of(e[0]) == self._run[0] and e[1] == od.PENDING_VERIFY
        arm = od.arm(e0, e1, 1 - self._run[0])
        # (trial, confirm's write or None, set_pending's write): (address, entry bytes)
        self._ota = [
            trial,
            (ota + act * SECTOR, od.pack(e[0], od.VALID)) if trial else None,
            (ota + arm[0] * SECTOR, od.pack(arm[1], arm[2])),
        ]
        let_go("otadata")

    def _write_entry(self, w):
        self._flash.erase(w[0])
        self._flash.write(w[0], w[1])

    def set_pending(self, version):
        """Arm the update slot for one trial boot (esp_ota_set_boot_partition's write).
        The version is the app header's, so nothing is recorded."""
        try:
            self._write_entry(self._ota[2])
        except (OSError, ValueError) as e:
            raise PortError("ARM_FAILED", repr(e))

    def confirm(self):
        """Only the running trial app: an armed update slot stays armed."""
        if self._ota[0]:
            self._write_entry(self._ota[1])
            self._ota[0] = False

    def pending_verify(self):
        return self._ota[0]

    def running_version(self):
        """The version in the running slot's sim app header; None without one."""
        hdr = memoryview(self._flash.buf)[:APP_HEADER_LEN]
        self._flash.read(self._run[1], hdr)
        magic, _f, _h, version = struct.unpack_from("<4sHHI", hdr)
        return version if magic == APP_MAGIC else None

    # watchdog: the runner resets the board when DIR/ops' feed count stops moving for ms
    def watchdog(self, ms):
        if self._flash._ctl is None:
            raise PortError("NO_WATCHDOG", "no runner: nothing would reset the board")
        self._wd = [ms, time.ticks_ms(), 0]
        self._flash.put_field(WATCHDOG, ms)

    def feed(self):
        # one counter write per quarter timeout at most: feeding stays cheap at every step
        wd = self._wd
        if wd and time.ticks_diff(time.ticks_ms(), wd[1]) >= wd[0] >> 2:
            wd[1] = time.ticks_ms()
            wd[2] += 1
            self._flash.put_field(FED, wd[2])

    def reset(self):
        self._flash.die(b"reset")

    # time and console
    def now(self):
        return int(time.time() + self._clock)

    def set_now(self, t):
        self._clock = t - time.time()

    def ticks_ms(self):
        return time.ticks_ms()

    def sleep_ms(self, ms):
        time.sleep_ms(ms)

    def log(self, msg):
        if self._console:
            print(msg)


class Link:
    """The HAN side of the board: the pty master fd the runner passes down, non-blocking."""

    def __init__(self, fd):
        self._f = open(fd, "r+b")
        self._poll = select.poll()
        self._poll.register(self._f, select.POLLIN)

    def readinto(self, buf, timeout_ms=0):
        n = self._f.readinto(buf)
        if not n and timeout_ms > 0 and self._poll.poll(timeout_ms):
            n = self._f.readinto(buf)
        return n or 0

    def write(self, buf):
        mv = memoryview(buf)
        tries = 0
        while len(mv) and tries < 20:  # nobody reading for ~100 ms: bytes fall on the floor
            n = self._f.write(mv)
            if n:
                mv = mv[n:]
            else:
                tries += 1
                time.sleep_ms(5)
        return len(buf) - len(mv)


def _mount_store(flash, part, mount_at):
    import vfs

    bdev = Partition(flash, part[0], part[1])
    # an open file holds a cache of 4 * max(readsize, progsize) bytes: with 16 (default
    # 32) each open is one 240-byte allocation, not 304, in a heap a resume after a power
    # cut leaves cut up (docs/agent.md, Memory); LittleFS takes any sizes at mount
    try:
        fs = vfs.VfsLfs2(bdev, readsize=16, progsize=16)
    except OSError:
        print("agent partition is not LittleFS: formatting it")  # as ESP32 _boot.py does
        vfs.VfsLfs2.mkfs(bdev, readsize=16, progsize=16)
        fs = vfs.VfsLfs2(bdev, readsize=16, progsize=16)
    vfs.mount(fs, mount_at)
    return KVStore(mount_at)
