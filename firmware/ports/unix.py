"""The simulated board's port: flash.bin slots and otadata, a pty HAN link, LittleFS at /data.

Reads run/boot.json written by the host runner (hanota.sim.runner); the runner, not this
module, plays bootloader and watchdog. No machine/esp32 here: MicroPython unix port only.
"""

import binascii
import hashlib
import json
import os
import select
import struct
import time

from micropython import const
from otaclient.kvstore import KVStore

from ports.simflash import SECTOR, Flash, FlashError, Partition

# ESP-IDF esp_ota_img_states_t
NEW = const(0)
PENDING_VERIFY = const(1)
VALID = const(2)
INVALID = const(3)
ABORTED = const(4)
UNDEFINED = const(0xFFFFFFFF)
_ENTRY = "<I20sII"  # esp_ota_select_entry_t: ota_seq, seq_label, ota_state, crc
_ENTRY_LEN = const(32)
_NO_SEQ = const(0xFFFFFFFF)
_ZIGBEE_EPOCH = const(946684800)  # 2000-01-01 in Unix seconds (MicroPython unix: 1970 epoch)
APP_MAGIC = b"HSAP"
APP_HEADER = "<4sHHII32sHH12x"  # magic, format, header_len, version, tree_len, sha256, mfr, type
APP_HEADER_LEN = const(64)
_BOARD_KEYS = ("name", "manufacturer_code", "image_type", "hw_version", "console")


def ota_crc(seq):
    """esp_rom_crc32_le(UINT32_MAX, &ota_seq, 4), as in ESP-IDF bootloader_common."""
    return binascii.crc32(struct.pack("<I", seq), 0xFFFFFFFF) & 0xFFFFFFFF


class Port:
    block_size = SECTOR

    def __init__(self, boot_path=None):
        with open(boot_path or os.getenv("HANOTA_BOOT") or "boot.json") as f:
            boot = json.load(f)
        parts = boot["partitions"]
        b = boot["board"]  # keep only what the agent reads: the rest is heap for nothing
        self.board = {k: b[k] for k in _BOARD_KEYS if k in b}
        self._flash = Flash(boot["flash"], boot.get("ops"))
        self._running = boot["slot_index"]
        self._version = boot["version"]
        self._upd, self.slot_size = parts["ota_%d" % (1 - self._running)]
        self._otadata = parts["otadata"][0]
        self._buf = self._flash.buf  # 256 bytes of scratch, shared
        self._console = self.board.get("console") == "on"
        self.link = Link(boot["han_fd"]) if boot.get("han_fd") is not None else None
        self.store = _mount_store(self._flash, parts["agent"], boot.get("store", "/data"))

    # update slot
    def erase(self, block):
        self._flash.erase(self._upd + self._slot_off(block * SECTOR, SECTOR))

    def write(self, offset, buf):
        self._flash.write(self._upd + self._slot_off(offset, len(buf)), buf)

    def read(self, offset, buf):
        self._flash.read(self._upd + self._slot_off(offset, len(buf)), buf)

    def _slot_off(self, offset, n):
        if offset < 0 or offset + n > self.slot_size:
            raise FlashError("outside the update slot: %d+%d" % (offset, n))
        return offset

    def check_app(self, length):
        """Raise ValueError unless the update slot holds a sim app for this board."""
        if length < APP_HEADER_LEN or length > self.slot_size:
            raise ValueError("app length out of range")
        hdr = memoryview(self._buf)[:APP_HEADER_LEN]
        self.read(0, hdr)
        magic, fmt, hlen, _v, tree, digest, mfr, typ = struct.unpack_from(APP_HEADER, hdr)
        if magic != APP_MAGIC or fmt != 2 or hlen != APP_HEADER_LEN:
            raise ValueError("not a sim app image")
        if mfr != self.board["manufacturer_code"] or typ != self.board["image_type"]:
            raise ValueError("app for another board")
        if APP_HEADER_LEN + tree != length:
            raise ValueError("app length mismatch")
        h = hashlib.sha256()
        mv = memoryview(self._buf)
        off = APP_HEADER_LEN
        while tree:
            k = min(tree, len(mv))
            self.read(off, mv[:k])
            h.update(mv[:k])
            off += k
            tree -= k
        if h.digest() != digest:
            raise ValueError("app hash mismatch")

    # otadata, ESP-IDF rules
    def _entries(self):
        out = []
        ent = memoryview(self._buf)[:_ENTRY_LEN]
        for i in (0, 1):
            self._flash.read(self._otadata + i * SECTOR, ent)
            seq, _label, state, crc = struct.unpack_from(_ENTRY, ent)
            out.append((seq, state, seq != _NO_SEQ and crc == ota_crc(seq)))
        return out

    def _selected(self, ents):
        # the bootloader's choice: usable entry with the highest sequence number
        best = -1
        for i in (0, 1):
            usable = ents[i][2] and ents[i][1] not in (INVALID, ABORTED)
            if usable and (best < 0 or ents[i][0] > ents[best][0]):
                best = i
        return best

    def _write_entry(self, sector, seq, state):
        addr = self._otadata + sector * SECTOR
        self._flash.erase(addr)
        self._flash.write(addr, struct.pack(_ENTRY, seq, b"\xff" * 20, state, ota_crc(seq)))

    def set_pending(self):
        ents = self._entries()
        sel = self._selected(ents)
        top = max([e[0] for e in ents if e[2]] + [0])
        upd = 1 - self._running
        seq = upd + 1
        while seq <= top:
            seq += 2  # keeps (seq - 1) % 2 == update slot, above every sequence seen
        self._write_entry(1 - sel if sel >= 0 else 0, seq, NEW)

    def confirm(self):
        ents = self._entries()
        sel = self._selected(ents)
        if sel >= 0 and self._is_running(ents[sel]) and ents[sel][1] != VALID:
            self._write_entry(sel, ents[sel][0], VALID)

    def pending_verify(self):
        ents = self._entries()
        sel = self._selected(ents)
        return sel >= 0 and self._is_running(ents[sel]) and ents[sel][1] == PENDING_VERIFY

    def _is_running(self, ent):
        return (ent[0] - 1) % 2 == self._running

    def running_version(self):
        return self._version

    def reset(self):
        self._flash.die(b"reset")

    # time and console
    def now(self):
        return int(time.time()) - _ZIGBEE_EPOCH

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
    # 32) each open is one 240-byte allocation, not 304, the allocation that failed most
    # at 64k after a power cut (docs/agent.md, Memory); LittleFS takes any sizes at mount
    try:
        fs = vfs.VfsLfs2(bdev, readsize=16, progsize=16)
    except OSError:
        print("agent partition is not LittleFS: formatting it")  # as ESP32 _boot.py does
        vfs.VfsLfs2.mkfs(bdev, readsize=16, progsize=16)
        fs = vfs.VfsLfs2(bdev, readsize=16, progsize=16)
    vfs.mount(fs, mount_at)
    return KVStore(mount_at)
