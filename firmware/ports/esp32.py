"""The ESP32 port: the update slot over esp32.Partition, otadata rollback, machine.UART for the
HAN link, LittleFS store at /data. The only file that imports `esp32` or `machine`, lazily.

It does not parse OTA files, decide policy or hold images in RAM: it moves 4 KB blocks and
answers the port contract of docs/porting.md. Image checks live in ports/esp32_image.py.
"""

import os
import struct
import time

from micropython import const

from ports import esp32_image

_BLOCK = const(4096)
_IOCTL_BLOCK_ERASE = const(6)
_STORE_DIR = "/data"
_ZIGBEE_EPOCH_FROM_1970 = const(946684800)  # 2000-01-01T00:00:00Z in POSIX seconds
_FF = b"\xff" * 256


class PortError(ValueError):
    def __init__(self, code, detail=""):
        super().__init__(code + ": " + detail if detail else code)
        self.code = code


class Uart:
    """The HAN link: readinto(buf, timeout_ms) -> n (0 on timeout), write(buf)."""

    def __init__(self, cfg):
        import machine

        self.uart = machine.UART(
            cfg["id"], baudrate=cfg["baud"], tx=cfg["tx"], rx=cfg["rx"], rxbuf=2048, timeout=0
        )

    def readinto(self, buf, timeout_ms):
        deadline = time.ticks_add(time.ticks_ms(), timeout_ms)
        mv = memoryview(buf)
        while True:
            avail = self.uart.any()
            if avail:
                return self.uart.readinto(mv[: min(avail, len(buf))]) or 0
            if time.ticks_diff(deadline, time.ticks_ms()) <= 0:
                return 0
            time.sleep_ms(1)

    def write(self, buf):
        self.uart.write(buf)


class Esp32Port:
    """Port contract (docs/architecture.md) on ESP32 / ESP32-S3 with MicroPython."""

    block_size = _BLOCK

    def __init__(self, board=None, link=None, store=None):
        from esp32 import Partition

        self.board = board if board is not None else load_board()
        board = self.board
        self._scratch = bytearray(256)
        self._Partition = Partition
        self._running = Partition(Partition.RUNNING)
        self._update = self._running.get_next_update()
        self.slot_size = self._update.info()[3]
        self._console = board.get("console", "on") == "on"
        self.store = store if store is not None else open_store(board)
        self.link = link if link is not None else Uart(board["han_uart"])

    # -- update slot ---------------------------------------------------------------
    def erase(self, block):
        if not 0 <= block < self.slot_size // _BLOCK:
            raise PortError("BAD_BLOCK", "block %d outside the slot" % block)
        self._update.ioctl(_IOCTL_BLOCK_ERASE, block)

    def write(self, offset, buf):
        self._range(offset, len(buf))
        self._check_erased(offset, len(buf))
        # 4-arg writeblocks programs without erasing (the range was erased by erase())
        self._update.writeblocks(offset // _BLOCK, buf, offset % _BLOCK)

    def _check_erased(self, offset, n):
        # NOR flash silently ANDs bits into a programmed byte; the contract refuses it
        mv = memoryview(self._scratch)
        while n:
            k = min(n, len(mv))
            self._update.readblocks(offset // _BLOCK, mv[:k], offset % _BLOCK)
            if mv[:k] != _FF[:k]:
                raise PortError("NOT_ERASED", "write at %d over programmed bytes" % offset)
            offset += k
            n -= k

    def read(self, offset, buf):
        self._range(offset, len(buf))
        self._update.readblocks(offset // _BLOCK, buf, offset % _BLOCK)

    def _range(self, offset, n):
        if offset < 0 or offset + n > self.slot_size:
            raise PortError("BAD_RANGE", "%d+%d outside the slot" % (offset, n))

    def check_app(self, length):
        """Refuse anything but an app-only ESP image for this chip that fits the slot and
        whose appended SHA-256 matches what is now in flash."""
        esp32_image.check_app(self.read, length, self.board["chip"], self.slot_size)

    # -- boot selection ------------------------------------------------------------
    def set_pending(self):
        # esp_ota_set_boot_partition: new otadata entry in state NEW; the bootloader boots
        # it once as PENDING_VERIFY and rolls back on the next reset unless confirmed.
        self._update.set_boot()

    def confirm(self):
        self._Partition.mark_app_valid_cancel_rollback()

    def pending_verify(self):
        active = self._otadata_active()
        if active is None:
            return False
        seq, state, slot = active
        running = self._running.info()[4]
        return state == esp32_image.OTA_PENDING_VERIFY and running == "ota_%d" % slot

    def _otadata_active(self):
        found = self._Partition.find(self._Partition.TYPE_DATA, label="otadata")
        if not found:
            return None
        e0, e1 = bytearray(32), bytearray(32)
        found[0].readblocks(0, e0)
        found[0].readblocks(1, e1)
        return esp32_image.ota_active(e0, e1)

    def running_version(self):
        """From the running app's descriptor version ("0x01020304" or "v1.28.0"); else 0."""
        head = bytearray(esp32_image.HEAD_LEN)
        self._running.readblocks(0, head)
        if struct.unpack_from("<I", head, 0x20)[0] != esp32_image.APP_DESC_MAGIC:
            return 0
        try:
            return esp32_image.parse_version(bytes(head[0x30:0x50]).split(b"\x00")[0].decode())
        except ValueError:  # UnicodeError: not text
            return 0

    def running_slot(self):
        return self._running.info()[4]

    def reset(self):
        import machine

        machine.reset()

    # -- time, log -----------------------------------------------------------------
    def now(self):
        return time.time() - _epoch_offset()

    def set_now(self, zigbee_utc):
        """Set the RTC from a ZigBee UTC time (e.g. the CH's currentTime); optional."""
        import machine

        t = time.gmtime(zigbee_utc + _epoch_offset())
        machine.RTC().datetime((t[0], t[1], t[2], t[6], t[3], t[4], t[5], 0))

    def ticks_ms(self):
        return time.ticks_ms()

    def sleep_ms(self, ms):
        time.sleep_ms(ms)

    def log(self, msg):
        if self._console:
            print(msg)


Port = Esp32Port  # ports.make_port() builds Port() with no arguments


def load_board(path="/board.json"):
    """The board definition deploy put beside main.py (or in the current directory)."""
    import json

    for p in (path, "board.json"):
        try:
            with open(p) as f:
                return json.load(f)
        except OSError:
            pass
    raise PortError("NO_BOARD", "board.json not found: deploy the agent with hanota board deploy")


def _epoch_offset():
    """Seconds from the ZigBee epoch (2000) to this port's time.time() epoch."""
    return _ZIGBEE_EPOCH_FROM_1970 if time.gmtime(0)[0] == 1970 else 0


def store_dir(board):
    """Mount the agent partition if it is not MicroPython's root filesystem; make /data."""
    agent = None
    for part in board["partitions"]:
        if part["name"] == "agent":
            agent = part
    if agent is not None and agent.get("mount", "/") != "/":
        _mount_lfs(agent.get("label", "agent"), _STORE_DIR)
    try:
        os.mkdir(_STORE_DIR)
    except OSError:
        pass  # exists (or is the mount point)
    return _STORE_DIR


def _mount_lfs(label, where):
    from esp32 import Partition

    try:
        os.stat(where)
        return  # already mounted
    except OSError:
        pass
    bdev = Partition(label)
    # readsize/progsize 16, not 32: an open file's cache is 4 * 16 bytes (as the sim port)
    try:
        os.mount(os.VfsLfs2(bdev, readsize=16, progsize=16), where)
    except OSError:
        # blank partition: format once. Provisioning must be redone after this.
        os.VfsLfs2.mkfs(bdev, readsize=16, progsize=16)
        os.mount(os.VfsLfs2(bdev, readsize=16, progsize=16), where)


def open_store(board):
    from otaclient.kvstore import KVStore

    return KVStore(store_dir(board))
