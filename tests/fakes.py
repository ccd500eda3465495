# ruff: noqa: UP031  (runs under MicroPython too: %-formatting, no f-strings)
"""Strict fake board for the agent: flash that refuses writes to unerased bytes, counted
operations, power cuts, a two-slot bootloader, a virtual clock and a modelled serial line.

Runs under CPython and MicroPython (tests load it through MICROPYPATH), so: no
dataclasses, no typing, no f-strings. Flash is file-backed so a 3 MB slot fits a 64 KB heap.
"""

import json
import struct

APP_MAGIC = b"APP!"  # fake app image: magic, version u32, flags u8 (bit0: crashes on boot)
_FF = b"\xff" * 4096


class PowerCut(BaseException):
    """Raised at the flash operation chosen with port.cut_at."""


class Reset(BaseException):
    """port.reset(): unwinds to the harness, which reboots the fake board."""


def fake_app(version, size, crash=False, seed=1):
    """A firmware payload the fake bootloader can run: header + pseudo-random filler."""
    head = APP_MAGIC + struct.pack("<IB", version, 1 if crash else 0)
    out = bytearray(head)
    x = seed * 2654435761 & 0xFFFFFFFF
    chunk = bytearray(4096)
    for i in range(0, 4096, 4):
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF
        chunk[i : i + 4] = struct.pack("<I", x)
    while len(out) < size:
        out.extend(chunk[: size - len(out)])
    return bytes(out[:size])


class FakeFlash:
    """One app slot in a file; erase unit 4096; write only onto erased (0xFF) bytes."""

    def __init__(self, port, path, size, block_size=4096, fill=True):
        self.port = port
        self.size = size
        self.bs = block_size
        self.f = open(path, "w+b")
        if fill:
            for _ in range(size // block_size):
                self.f.write(memoryview(_FF)[:block_size])

    def erase(self, block):
        if not 0 <= block < self.size // self.bs:
            raise ValueError("erase out of slot")
        self.port._op("erase", block)
        self.f.seek(block * self.bs)
        self.f.write(memoryview(_FF)[: self.bs])

    def write(self, offset, buf):
        n = len(buf)
        if offset < 0 or offset + n > self.size:
            raise ValueError("write out of slot")
        cur = bytearray(n)
        self._read(offset, cur)
        if cur != _FF[:n]:
            raise ValueError("write to unerased bytes at %d" % offset)
        self.port._op("write", offset)
        self.f.seek(offset)
        self.f.write(buf)

    def _read(self, offset, buf):
        self.f.seek(offset)
        self.f.readinto(buf)

    def read(self, offset, buf):
        if offset < 0 or offset + len(buf) > self.size:
            raise ValueError("read out of slot")
        self.port.reads += 1
        self._read(offset, buf)


class FakeStore:
    """In-memory store; put/delete are counted flash operations (atomic)."""

    def __init__(self, port, data=None):
        self.port = port
        self.d = dict(data or {})

    def get(self, name):
        return self.d.get(name)

    def put(self, name, data):
        self.port._op("put", name)
        self.d[name] = data.encode() if isinstance(data, str) else bytes(data)

    def put_json(self, name, obj):
        self.put(name, json.dumps(obj))

    def delete(self, name):
        self.port._op("delete", name)
        self.d.pop(name, None)


class FakeLink:
    """A full-duplex serial line with a virtual clock: baud (None = instant), latency.

    `peer(data) -> bytes` is the CH double; it sees request bytes when they arrive and
    its answers occupy the downlink one after another.
    """

    def __init__(self, port, peer, baud=None, latency_ms=0.0):
        self.port = port
        self.peer = peer
        self.ms_per_byte = 10000.0 / baud if baud else 0.0
        self.latency = latency_ms
        self.up = []  # (arrival ms, bytes) towards the peer
        self.down = []  # (arrival ms, bytes) towards the device
        self.up_free = self.down_free = 0.0
        self.rx_bytes = self.tx_bytes = 0
        self.mangle = None  # mangle(data) -> data: corrupt bytes towards the device

    def write(self, buf):
        now = self.port.clock
        self.up_free = max(self.up_free, now) + len(buf) * self.ms_per_byte
        self.up.append((self.up_free + self.latency, bytes(buf)))
        self.tx_bytes += len(buf)
        if not self.ms_per_byte:
            self._deliver_up(now)

    def _deliver_up(self, now):
        while self.up and self.up[0][0] <= now:
            t, data = self.up.pop(0)
            out = self.peer(data)
            if out:
                self._queue_down(t, out)

    def _queue_down(self, t, out):
        for frame in out if isinstance(out, list) else [out]:
            if self.mangle:
                frame = self.mangle(frame)
            self.down_free = max(self.down_free, t) + len(frame) * self.ms_per_byte
            self.down.append((self.down_free + self.latency, frame))

    def readinto(self, buf, timeout_ms=0):
        port = self.port
        end = port.clock + max(timeout_ms, 1)
        while True:
            self._deliver_up(port.clock)
            if self.down and self.down[0][0] <= port.clock:
                return self._copy(buf)
            nxt = [e[0][0] for e in (self.up, self.down) if e]
            t = min(nxt) if nxt else end + 1
            if t > end:
                port.clock = end
                return 0
            port.clock = max(port.clock, t)

    def _copy(self, buf):
        t, data = self.down[0]
        n = min(len(buf), len(data))
        buf[:n] = data[:n]
        if n < len(data):
            self.down[0] = (t, data[n:])
        else:
            self.down.pop(0)
        self.rx_bytes += n
        return n


class FakePort:
    """The port contract, strict. Survives 'reboots': the harness calls reboot()."""

    def __init__(self, board, store, tmpdir, slot_size, factory=None, now0=800000000):
        self.board = board
        self.block_size = 4096
        self.slot_size = slot_size
        self.clock = 0.0
        self.now0 = now0
        self.ops = 0
        self.reads = 0
        self.cut_at = None
        self.oplog = []
        self.logs = []
        self.echo = False
        self.store = FakeStore(self, store)
        self.slots = [FakeFlash(self, tmpdir + "/slot%d.bin" % i, slot_size) for i in (0, 1)]
        self.active = 0
        self.pending = self.trial = False
        self.boots = []
        self.slots[0].f.seek(0)
        self.slots[0].f.write(factory or fake_app(0x01000000, 64))
        self.link = None
        self.arm_error = None  # set_pending raises this (a ValueError), as a refusing bootloader
        self.version_unknown = False  # apps without a readable version (stock ESP32 builds)
        self.recorded = {}  # slot -> version set_pending recorded (how an ESP32 port knows it)
        self.wdt_ms = None  # watchdog(ms) armed; feeds counted
        self.feeds = 0

    def _op(self, kind, arg):
        if self.cut_at is not None and self.ops >= self.cut_at:
            self.cut_at = None
            raise PowerCut("cut at op %d (%s %r)" % (self.ops, kind, arg))
        self.ops += 1
        if self.oplog is not None:  # None on heap-measuring runs: the log grows
            self.oplog.append((kind, arg))

    # update slot = the inactive one
    def erase(self, block):
        self.slots[1 - self.active].erase(block)

    def write(self, offset, buf):
        self.slots[1 - self.active].write(offset, buf)

    def read(self, offset, buf):
        self.slots[1 - self.active].read(offset, buf)

    def read_running(self, offset, buf):
        self.slots[self.active].read(offset, buf)

    def _app(self, slot):
        head = bytearray(9)
        self.slots[slot]._read(0, head)
        if head[:4] != APP_MAGIC:
            return None
        return struct.unpack("<IB", head[4:9])

    def check_app(self, length):
        app = self._app(1 - self.active)
        if length < 9 or length > self.slot_size or app is None:
            raise ValueError("not an app")
        return None if self.version_unknown else app[0]  # the app's own version, if readable

    def set_pending(self, version):
        if self.arm_error is not None:
            raise self.arm_error
        self._op("otadata", "pending")
        self.pending = True
        self.recorded[1 - self.active] = version

    def confirm(self):
        # the contract: only the running trial slot is confirmed, an armed slot stays armed
        if self.trial:
            self._op("otadata", "confirm")
        self.trial = False

    def pending_verify(self):
        return self.trial

    def running_version(self):
        if self.version_unknown:  # the app cannot tell: what set_pending recorded, or None
            return self.recorded.get(self.active)
        return self._app(self.active)[0]

    def watchdog(self, ms):
        self.wdt_ms = ms

    def feed(self):
        self.feeds += 1

    def set_now(self, t):
        self.now0 = t - int(self.clock // 1000)

    def app_crashes(self):
        return bool(self._app(self.active)[1] & 1)

    def reset(self):
        raise Reset()

    def reboot(self):
        """The bootloader: a pending slot boots once on trial; an unconfirmed trial rolls back."""
        if self.pending:
            self.pending = False
            self.trial = True
            self.active = 1 - self.active
            event = "trial"
        elif self.trial:
            self.trial = False
            self.active = 1 - self.active
            event = "rollback"
        else:
            event = "normal"
        self.boots.append((event, self.running_version()))
        return event

    def now(self):
        return self.now0 + int(self.clock // 1000)

    def ticks_ms(self):
        return int(self.clock)

    def sleep_ms(self, ms):
        self.clock += ms

    def log(self, msg):
        self.logs.append(msg)
        if self.echo:
            print(msg)
