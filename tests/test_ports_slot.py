"""ports.slot (erase/write/read) over block devices shaped like esp32.Partition, CPython and MicroPython.

RamNor below is NOR flash as esp32.Partition exposes it (ports/esp32/esp32_partition.c in
MicroPython v1.28): the 4-argument writeblocks programs without erasing, and programming
only clears bits, so a write over programmed bytes silently ANDs them in.
"""

from __future__ import annotations

import sys

import pytest
from hanota.paths import FIRMWARE
from mpy import check_mpy

sys.path.insert(0, str(FIRMWARE))
from ports import slot  # noqa: E402
from ports.slot import PortError  # noqa: E402

RAM_NOR = """
class RamNor:
    def __init__(self, blocks, bs=4096):
        self.bs = bs
        self.mem = bytearray(b"\\xff" * (blocks * bs))
        self.calls = 0

    def readblocks(self, block, buf, off=0):
        a = block * self.bs + off
        buf[:] = self.mem[a : a + len(buf)]

    def writeblocks(self, block, buf, off=None):
        assert off is not None, "the slot never uses the erasing 3-argument form"
        self.calls += 1
        a = block * self.bs + off
        for i in range(len(buf)):
            self.mem[a + i] &= buf[i]

    def ioctl(self, op, arg):
        if op == 4:
            return len(self.mem) // self.bs
        if op == 5:
            return self.bs
        if op == 6:
            self.mem[arg * self.bs : (arg + 1) * self.bs] = b"\\xff" * self.bs
        return 0
"""
exec(RAM_NOR)


def code(exc: BaseException) -> str:
    assert isinstance(exc, PortError) and isinstance(exc, ValueError)
    return exc.code


SIZE4 = 4 * 4096


def test_write_read_across_blocks():
    dev = RamNor(4)  # noqa: F821
    slot.erase(dev, SIZE4, 0)
    slot.erase(dev, SIZE4, 1)
    data = bytes(range(256)) * 8
    slot.write(dev, SIZE4, 4096 - 1000, data, bytearray(256))
    assert dev.calls == 2  # split at the block boundary
    buf = bytearray(len(data))
    slot.read(dev, SIZE4, 4096 - 1000, buf)
    assert buf == data


def test_range_checks():
    dev = RamNor(4)  # noqa: F821
    for fn in (lambda: slot.read(dev, SIZE4, SIZE4 - 8, bytearray(16)),
               lambda: slot.write(dev, SIZE4, -1, b"x", bytearray(16))):  # fmt: skip
        with pytest.raises(PortError) as e:
            fn()
        assert code(e.value) == "BAD_RANGE"
    for block in (-1, 4):
        with pytest.raises(PortError) as e:
            slot.erase(dev, SIZE4, block)
        assert code(e.value) == "BAD_BLOCK"
    slot.read(dev, SIZE4, SIZE4 - 16, bytearray(16))  # the last bytes are inside


def test_write_over_programmed_refused_before_programming():
    dev = RamNor(4)  # noqa: F821
    scratch = bytearray(256)
    slot.write(dev, SIZE4, 5000, b"\x0f\xf0", scratch)
    before = bytes(dev.mem)
    with pytest.raises(PortError) as e:
        slot.write(dev, SIZE4, 4096, b"\x00" * 1024, scratch)  # its last bytes overlap
    assert code(e.value) == "NOT_ERASED"
    assert bytes(dev.mem) == before
    slot.erase(dev, SIZE4, 1)
    slot.write(dev, SIZE4, 4096, b"\x00" * 1024, scratch)


def test_small_scratch():
    dev = RamNor(2)  # noqa: F821
    slot.write(dev, 8192, 0, b"\x00" * 100, bytearray(16))
    with pytest.raises(PortError):
        slot.write(dev, 8192, 50, b"\x01", bytearray(16))


def test_device_that_refuses_itself_is_not_read_back():
    class Strict(RamNor):  # noqa: F821
        reads = 0

        def readblocks(self, block, buf, off=0):
            self.reads += 1
            super().readblocks(block, buf, off)

        def writeblocks(self, block, buf, off=None):
            a = block * self.bs + off
            if self.mem[a : a + len(buf)] != b"\xff" * len(buf):
                raise PortError("NOT_ERASED", f"at {a}")
            super().writeblocks(block, buf, off)

    dev = Strict(2)
    slot.write(dev, 8192, 0, b"\x00" * 1024)  # no scratch: the device checks
    assert dev.reads == 0
    with pytest.raises(PortError) as e:
        slot.write(dev, 8192, 0, b"\x00")
    assert code(e.value) == "NOT_ERASED"


def test_micropython():
    out = check_mpy(
        RAM_NOR
        + """
from ports import slot
from ports.slot import PortError
d = RamNor(4)
S = 4 * 4096
sc = bytearray(256)
slot.erase(d, S, 1)
slot.write(d, S, 4096 - 10, b"\\x00" * 20, sc)
buf = bytearray(24)
slot.read(d, S, 4096 - 12, buf)
print(bytes(buf) == b"\\xff\\xff" + b"\\x00" * 20 + b"\\xff\\xff")
for fn in (lambda: slot.write(d, S, 4096, b"\\x01", sc), lambda: slot.read(d, S, S, bytearray(1)),
           lambda: slot.erase(d, S, 9)):
    try:
        fn()
    except PortError as e:
        print(e.code, isinstance(e, ValueError))
"""
    )
    assert out.split() == ["True", "NOT_ERASED", "True", "BAD_RANGE", "True", "BAD_BLOCK", "True"]
