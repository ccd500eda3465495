"""The update slot over MicroPython's block-device protocol, with the range and erased checks
written once for every port; PortError, the contract's error. No boot selection, no image checks.

The device is anything shaped like esp32.Partition: readblocks(block, buf, off),
writeblocks(block, buf, off) with the 4-argument form programming without an erase,
ioctl(4) block count, ioctl(5) block size, ioctl(6, block) erase one block.
"""

from micropython import const

_IOCTL_BLOCK_COUNT = const(4)
_IOCTL_BLOCK_SIZE = const(5)
_IOCTL_BLOCK_ERASE = const(6)
_SCRATCH = const(256)
# erased bytes as a literal: in ROM with the app (XIP), not 256 bytes of heap
_FF = memoryview(
    b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
    b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
    b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
    b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
)


class PortError(ValueError):
    """A port operation refused or failed. `code`: BAD_BLOCK, BAD_RANGE, NOT_ERASED (here),
    VALIDATE_FAILED, ARM_FAILED, ENCRYPTED (ports); `detail` says what and where."""

    def __init__(self, code, detail=""):
        super().__init__(code + ": " + detail if detail else code)
        self.code = code


class Slot:
    """The update slot: erase(block), write(offset, buf), read(offset, buf); size and
    block_size in bytes. `scratch` (>= 16 bytes, 256 if None) is lent for the erased check.

    A write over bytes that are not all 0xFF is refused (NOR flash would AND them in
    silently). A device whose own program operation refuses that, raising
    PortError("NOT_ERASED") before touching flash, says so with `refuses_programmed = True`
    and is not read back a second time here (the sim's strict NOR flash)."""

    def __init__(self, bdev, scratch=None):
        self._dev = bdev
        self.block_size = bdev.ioctl(_IOCTL_BLOCK_SIZE, 0)
        self.size = bdev.ioctl(_IOCTL_BLOCK_COUNT, 0) * self.block_size
        self._check = not getattr(bdev, "refuses_programmed", False)
        self._mv = memoryview(scratch if scratch is not None else bytearray(_SCRATCH))

    def erase(self, block):
        if not 0 <= block < self.size // self.block_size:
            raise PortError("BAD_BLOCK", "block %d outside the slot" % block)
        self._dev.ioctl(_IOCTL_BLOCK_ERASE, block)

    def write(self, offset, buf):
        n = len(buf)
        self._range(offset, n)
        if self._check:
            self._erased(offset, n)
        bs = self.block_size
        mv = memoryview(buf)
        done = 0
        while done < n:  # one writeblocks per block: the device addresses (block, offset)
            off = (offset + done) % bs
            k = min(n - done, bs - off)
            self._dev.writeblocks((offset + done) // bs, mv[done : done + k], off)
            done += k

    def read(self, offset, buf):
        n = len(buf)
        self._range(offset, n)
        bs = self.block_size
        if offset % bs + n <= bs:
            self._dev.readblocks(offset // bs, buf, offset % bs)
            return
        mv = memoryview(buf)
        done = 0
        while done < n:
            off = (offset + done) % bs
            k = min(n - done, bs - off)
            self._dev.readblocks((offset + done) // bs, mv[done : done + k], off)
            done += k

    def _range(self, offset, n):
        if offset < 0 or n < 0 or offset + n > self.size:
            raise PortError("BAD_RANGE", "%d+%d outside the slot" % (offset, n))

    def _erased(self, offset, n):
        mv = self._mv
        step = min(len(mv), _SCRATCH)
        done = 0
        while done < n:
            k = min(step, n - done)
            self.read(offset + done, mv[:k])
            if mv[:k] != _FF[:k]:
                raise PortError("NOT_ERASED", "write at %d over programmed bytes" % (offset + done))
            done += k
