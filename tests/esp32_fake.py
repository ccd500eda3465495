"""Fake `esp32` and `machine` modules for running ports/esp32.py under the MicroPython unix
port: sparse NOR flash (writes AND bits, as hardware does), esp32.Partition with
MicroPython's semantics (3-arg writeblocks erases, 4-arg does not, ioctl(6) erases a block),
and ESP-IDF otadata with app rollback, plus a tiny bootloader. Install with install(board)."""

import binascii
import struct
import sys

_B = 4096
_blocks = {}
_table = []  # (type, subtype, addr, size, label)
_state = {"running": "ota_0", "resets": 0}


def _read(addr, n):
    out = bytearray(n)
    i = 0
    while i < n:
        a = addr + i
        blk, off = a // _B, a % _B
        k = min(n - i, _B - off)
        data = _blocks.get(blk)
        out[i : i + k] = data[off : off + k] if data is not None else b"\xff" * k
        i += k
    return out


def _erase(addr, n):
    if addr % _B or n % _B:
        raise OSError(-0x102)  # ESP_ERR_INVALID_ARG: erase must be sector aligned
    for blk in range(addr // _B, (addr + n) // _B):
        _blocks.pop(blk, None)


def _write(addr, data):
    for i, b in enumerate(bytes(data)):
        blk, off = (addr + i) // _B, (addr + i) % _B
        cur = _blocks.setdefault(blk, bytearray(b"\xff" * _B))
        cur[off] &= b  # NOR: program only clears bits


def _entry(seq, state):
    crc = binascii.crc32(struct.pack("<I", seq), 0xFFFFFFFF) & 0xFFFFFFFF
    return struct.pack("<I20sII", seq, b"\xff" * 20, state, crc)


def _otadata():
    for t in _table:
        if t[4] == "otadata":
            return t[2]
    raise OSError(2)


def _entries():
    base = _otadata()
    out = []
    for i in (0, 1):
        raw = _read(base + i * _B, 32)
        seq = struct.unpack_from("<I", raw, 0)[0]
        state, crc = struct.unpack_from("<II", raw, 24)
        ok = seq != 0xFFFFFFFF and crc == binascii.crc32(raw[0:4], 0xFFFFFFFF) & 0xFFFFFFFF
        out.append((seq, state, ok and state not in (3, 4)))
    return out


def _active():
    best = -1
    ents = _entries()
    for i in (0, 1):
        if ents[i][2] and (best < 0 or ents[i][0] > ents[best][0]):
            best = i
    return best, ents


def _put_entry(sector, seq, state):
    addr = _otadata() + sector * _B
    _erase(addr, _B)
    _write(addr, _entry(seq, state))


def boot():
    """The bootloader: NEW -> PENDING_VERIFY (trial); PENDING_VERIFY again -> ABORTED, rollback."""
    sel, ents = _active()
    if sel < 0:
        _state["running"] = "ota_0"
        return
    seq, st, _ = ents[sel]
    if st == 0:
        _put_entry(sel, seq, 1)
    elif st == 1:
        _put_entry(sel, seq, 4)
        return boot()
    _state["running"] = "ota_" + str((seq - 1) % 2)


class Partition:
    BOOT = 0
    RUNNING = 1
    TYPE_APP = 0
    TYPE_DATA = 1

    def __init__(self, id):
        label = _state["running"] if id in (0, 1) else id
        for t in _table:
            if t[4] == label:
                self._t = t
                return
        raise OSError(2)

    @staticmethod
    def find(type=0, subtype=255, label=None):
        return [
            Partition(t[4]) for t in _table if t[0] == type and (label is None or t[4] == label)
        ]

    def info(self):
        return self._t + (False,)

    def readblocks(self, block, buf, off=0):
        a = block * _B + off
        if a + len(buf) > self._t[3]:
            raise OSError(-0x102)
        buf[:] = _read(self._t[2] + a, len(buf))

    def writeblocks(self, block, buf, off=None):
        a = block * _B + (off or 0)
        if a + len(buf) > self._t[3]:
            raise OSError(-0x102)
        if off is None:
            _erase(self._t[2] + a, len(buf))
        _write(self._t[2] + a, buf)

    def ioctl(self, op, arg):
        if op == 4:
            return self._t[3] // _B
        if op == 5:
            return _B
        if op == 6:
            _erase(self._t[2] + arg * _B, _B)
            return 0
        return None

    def get_next_update(self):
        return Partition("ota_1" if self._t[4] == "ota_0" else "ota_0")

    def set_boot(self):
        idx = int(self._t[4][-1])
        sel, ents = _active()
        top = max([e[0] for e in ents if e[2]] + [0])
        seq = idx + 1
        while seq <= top:
            seq += 2
        _put_entry(1 - sel if sel >= 0 else 0, seq, 0)

    @staticmethod
    def mark_app_valid_cancel_rollback():
        sel, ents = _active()
        if sel >= 0 and ents[sel][1] == 1:
            _put_entry(sel, ents[sel][0], 2)


class _Module:
    pass


class UART:
    def __init__(self, id, baudrate=115200, tx=None, rx=None, rxbuf=256, timeout=0):
        self.rx = bytearray()
        self.tx = bytearray()

    def any(self):
        return len(self.rx)

    def readinto(self, buf):
        n = min(len(buf), len(self.rx))
        buf[:n] = self.rx[:n]
        self.rx = self.rx[n:]
        return n

    def write(self, data):
        self.tx += data
        return len(data)


class ResetCalled(Exception):
    pass


def _reset():
    _state["resets"] += 1
    raise ResetCalled()


def install(board, running="ota_0"):
    """Lay out `board`'s partitions, make `import esp32` / `import machine` the fakes."""
    types = {"app": 0, "data": 1}
    del _table[:]
    for p in board["partitions"]:
        _table.append((types[p["type"]], 0, p["offset"], p["size"], p.get("label", p["name"])))
    _blocks.clear()
    _state["running"] = running
    esp32 = _Module()
    esp32.Partition = Partition
    machine = _Module()
    machine.UART = UART
    machine.reset = _reset
    sys.modules["esp32"] = esp32
    sys.modules["machine"] = machine
