"""File-backed NOR flash for the simulated board: strict erase/write rules, counted ops, power cut.

Every erase and write is a real seek + write + flush on flash.bin, so a kill leaves the
file exactly as the interrupted operation left it. No partition policy here (unix.py).
"""

import os

from micropython import const

from ports.slot import PortError

SECTOR = const(4096)
_CHUNK = const(512)  # erased bytes written per erase step (the literal below)
_SCRATCH = const(256)  # the scratch buffer: erase checks here, header/otadata reads in unix.py
# erased bytes: a literal, so the 512 bytes stay in the app image (ROM), not the heap
_FF = memoryview(
    b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
    b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
    b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
    b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
    b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
    b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
    b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
    b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
)
# ops file: "%11d\n" ops | "%11d\n" cut-at | "%-11s\n" exit reason | "%11d\n" watchdog ms |
# "%11d\n" watchdog feeds (hanota.sim.runner reads the same layout)
_FIELD = const(12)
_OFF_OPS = const(0)
_OFF_CUT = const(12)
_OFF_EXIT = const(24)
WATCHDOG = const(36)  # put_field offsets of the watchdog's timeout (ms) and feed count
FED = const(48)


class Flash:
    """The whole flash file. `ops_path` (the DIR/ops file) enables counting and power cut."""

    def __init__(self, path, ops_path=None):
        self._f = open(path, "r+b")
        # scratch shared with the port (its header and otadata reads): write() uses it only
        # to check that the bytes are erased
        self.buf = bytearray(_SCRATCH)
        self._mv = memoryview(self.buf)
        self._ctl = open(ops_path, "r+b") if ops_path else None
        self._num = bytearray(_FIELD)
        self.ops = self._field(_OFF_OPS) if self._ctl else 0

    def read(self, addr, buf):
        self._f.seek(addr)
        n = self._f.readinto(buf)
        if n != len(buf):
            raise PortError("BAD_RANGE", "read past end of flash at %d" % addr)

    def erase(self, addr):
        if addr % SECTOR:
            raise PortError("BAD_BLOCK", "erase not sector aligned: %d" % addr)
        cut = self._begin()
        self._f.seek(addr)
        for _ in range(SECTOR // _CHUNK // (2 if cut else 1)):
            self._f.write(_FF)
        self._end(cut)

    def write(self, addr, buf):
        n = len(buf)
        self._check_erased(addr, n)
        cut = self._begin()
        self._f.seek(addr)
        self._f.write(memoryview(buf)[: n // 2] if cut else buf)
        self._end(cut)

    def _check_erased(self, addr, n):
        # NOR flash only clears bits; like MCUboot's sim, refuse writes over unerased bytes
        done = 0
        while done < n:
            k = min(_SCRATCH, n - done)
            mv = self._mv[:k]
            self.read(addr + done, mv)
            if mv != _FF[:k]:
                raise PortError("NOT_ERASED", "write over programmed bytes at %d" % (addr + done))
            done += k

    def _begin(self):
        if self._ctl is None:
            return False
        return self.ops + 1 == self._field(_OFF_CUT)

    def _end(self, cut):
        self._f.flush()
        if self._ctl is None:
            return
        self.ops += 1
        self._put(_OFF_OPS, b"%11d\n" % self.ops)
        if cut:
            self.die(b"cut")

    def die(self, reason):
        """Stop MicroPython at once (no finally blocks), leaving `reason` for the runner."""
        if self._ctl is not None:
            self._put(_OFF_EXIT, b"%-11s\n" % reason)
        os.system("kill -9 $PPID")
        while True:
            pass  # the kill is asynchronous; never run another line of the app

    def put_field(self, off, value):
        self._put(off, b"%11d\n" % value)

    def _field(self, off):
        self._ctl.seek(off)
        self._ctl.readinto(self._num)
        return int(self._num)

    def _put(self, off, data):
        self._ctl.seek(off)
        self._ctl.write(data)
        self._ctl.flush()


class Partition:
    """A block device over part of the flash, shaped like esp32.Partition (for VfsLfs2 and
    ports.slot). Its writes refuse programmed bytes themselves (Flash.write)."""

    def __init__(self, flash, offset, size):
        self._flash = flash
        self._off = offset
        self._blocks = size // SECTOR

    def readblocks(self, block, buf, off=0):
        self._flash.read(self._off + block * SECTOR + off, buf)

    def writeblocks(self, block, buf, off=None):
        if off is None:  # 3-arg form erases first, as esp32.Partition does
            for i in range((len(buf) + SECTOR - 1) // SECTOR):
                self._flash.erase(self._off + (block + i) * SECTOR)
            off = 0
        self._flash.write(self._off + block * SECTOR + off, buf)

    def ioctl(self, op, arg):
        if op == 4:  # block count
            return self._blocks
        if op == 5:  # block size
            return SECTOR
        if op == 6:  # erase one block
            self._flash.erase(self._off + arg * SECTOR)
        return 0
