"""The update slot over MicroPython's block-device protocol, with the range and erased checks
written once for every port; PortError, the contract's error. No boot selection, no image checks.

The device is anything shaped like esp32.Partition: readblocks(block, buf, off),
writeblocks(block, buf, off) with the 4-argument form programming without an erase,
ioctl(6, block) erasing one 4 KB block. A port keeps the device and the slot's size and
forwards its erase/write/read here: module functions, not a class, because a class and an
instance are heap the agent needs while it fetches (docs/agent.md, Memory).
"""

from micropython import const

# the contract's error: `code` BAD_BLOCK, BAD_RANGE, NOT_ERASED (here), VALIDATE_FAILED,
# ARM_FAILED, CONFIRM_FAILED, ENCRYPTED, TRIAL (ports); the text says what and where. The
# agent's one error class (otaclient.Error) under the contract's name.
from otaclient import Error as PortError  # noqa: F401

_BLOCK = const(4096)  # every slot in 4 KB blocks (esp32.Partition's default block size)
_IOCTL_BLOCK_ERASE = const(6)
_SCRATCH = const(256)
# erased bytes as a literal: in ROM with the app (XIP), not 256 bytes of heap
_FF = memoryview(
    b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
    b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
    b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
    b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
)


def erase(dev, size, block):
    """Erase block `block` of a slot of `size` bytes on `dev`."""
    if not 0 <= block < size // _BLOCK:
        raise PortError("BAD_BLOCK", "block %d outside the slot" % block)
    dev.ioctl(_IOCTL_BLOCK_ERASE, block)


def write(dev, size, offset, buf, scratch=None):
    """Program `buf` at `offset`, refusing a write over bytes that are not all 0xFF (NOR
    flash would AND them in silently) before programming anything. `scratch` (>= 16 bytes)
    is the buffer for that check; None for a device whose program operation refuses such a
    write itself (the sim's strict NOR flash), which is not read back a second time."""
    n = len(buf)
    _range(size, offset, n)
    if scratch is not None:
        mv = memoryview(scratch)
        step = min(len(mv), _SCRATCH)
        done = 0
        while done < n:
            k = min(step, n - done)
            read(dev, size, offset + done, mv[:k])
            if mv[:k] != _FF[:k]:
                raise PortError("NOT_ERASED", "write at %d over programmed bytes" % (offset + done))
            done += k
    mv = memoryview(buf)
    done = 0
    while done < n:  # one writeblocks per block: the device addresses (block, offset)
        off = (offset + done) % _BLOCK
        k = min(n - done, _BLOCK - off)
        dev.writeblocks((offset + done) // _BLOCK, mv[done : done + k], off)
        done += k


def read(dev, size, offset, buf):
    """Fill `buf` from `offset`."""
    n = len(buf)
    _range(size, offset, n)
    if offset % _BLOCK + n <= _BLOCK:
        dev.readblocks(offset // _BLOCK, buf, offset % _BLOCK)
        return
    mv = memoryview(buf)
    done = 0
    while done < n:
        off = (offset + done) % _BLOCK
        k = min(n - done, _BLOCK - off)
        dev.readblocks((offset + done) // _BLOCK, mv[done : done + k], off)
        done += k


def _range(size, offset, n):
    if offset < 0 or n < 0 or offset + n > size:
        raise PortError("BAD_RANGE", "%d+%d outside the slot" % (offset, n))
