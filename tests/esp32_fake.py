"""A stock ESP32 for ports/esp32.py: fake `esp32`, `machine` and `time` modules, NOR flash,
the ESP-IDF v5.5.1 bootloader, power cuts. Runs under the MicroPython unix port and CPython.

Re-derived from MicroPython v1.28.0 (ports/esp32/esp32_partition.c, machine_wdt.c,
mphalport.c check_esp_err) and ESP-IDF v5.5.1 (esp_ota_ops.c, esp_partition/partition_target.c,
bootloader_utility.c, esp_image_format.c via esp_image_verify.py); otadata through
ports/otadata.py, the project's one copy of that rule. Not modelled: a factory app, partition
block sizes below 4096 (the port never asks for them), eFuse anti-rollback, secure boot.
"""

# ruff: noqa: UP031 (runs under MicroPython too: %-formatting, as firmware/ does)

import sys
import time as _rt

import esp_image_verify as _iv
from ports import otadata as _od

SECTOR = 4096
_TYPES = {"app": 0, "data": 1}
_SUBTYPES = {
    "factory": 0x00, "ota_0": 0x10, "ota_1": 0x11, "test": 0x20,
    "ota": 0x00, "phy": 0x01, "nvs": 0x02, "coredump": 0x03, "fat": 0x81, "spiffs": 0x82,
    "littlefs": 0x83,
}  # fmt: skip
_EPOCH_2000 = 946684800
_TICKS_PERIOD = 1 << 30  # MICROPY_PY_TIME_TICKS_PERIOD

# esp_err_t values (esp_err.h, esp_ota_ops.h)
ESP_FAIL = -1
ESP_ERR_INVALID_ARG = 0x102
ESP_ERR_INVALID_SIZE = 0x104
ESP_ERR_NOT_FOUND = 0x105
ESP_ERR_NOT_SUPPORTED = 0x106
ESP_ERR_OTA_VALIDATE_FAILED = 0x1503
_NAMES = {
    ESP_FAIL: "ESP_FAIL", ESP_ERR_INVALID_ARG: "ESP_ERR_INVALID_ARG",
    ESP_ERR_INVALID_SIZE: "ESP_ERR_INVALID_SIZE", ESP_ERR_NOT_FOUND: "ESP_ERR_NOT_FOUND",
    ESP_ERR_NOT_SUPPORTED: "ESP_ERR_NOT_SUPPORTED",
    ESP_ERR_OTA_VALIDATE_FAILED: "ESP_ERR_OTA_VALIDATE_FAILED",
}  # fmt: skip


def esp_error(code):
    """The OSError check_esp_err raises: errno -code (a few mapped to POSIX), name as text."""
    errno = {ESP_ERR_NOT_SUPPORTED: 95}.get(code, -code)  # EOPNOTSUPP
    return OSError(errno, _NAMES.get(code, "0x%x" % code))


class PowerCut(BaseException):
    """Power failed during a flash operation (that operation is torn)."""


class Reset(BaseException):
    """The board resets: `why` is "soft" (machine.reset) or "wdt" (the task watchdog panics)."""

    def __init__(self, why):
        super().__init__(why)
        self.why = why


class NoBoot(Exception):
    """The bootloader found no slot whose image loads (it would reset in a loop)."""


class Board:
    def __init__(self, board, chip_rev, blk_rev, encrypted):
        self.chip = board["chip"]
        self.chip_rev = chip_rev
        self.blk_rev = blk_rev
        self.encrypted = encrypted
        self.table = [
            (_TYPES[p["type"]], _SUBTYPES[p["subtype"]], p["offset"], p["size"], p.get("label", p["name"]))
            for p in board["partitions"]
        ]  # fmt: skip
        self.sectors = {}
        self.ops = 0  # flash erases (per sector), flash writes and store writes so far
        self.cut_at = None  # ops allowed to complete before the power fails
        self.dead = False
        self.running = None  # partition row of the app running, None before boot()
        self.trial = False
        self.boots = []  # (slot, trial) per boot
        self.ms = 0  # since this boot (ticks)
        self.rtc = 0  # RTC seconds since 2000 at ms == 0
        self.wdt = None  # [timeout_ms, deadline_ms] once machine.WDT() ran this boot
        self.store = {}


B = None  # the board of the last install()


def _tick():
    if B.dead:
        raise PowerCut()
    if B.cut_at is not None and B.ops >= B.cut_at:
        B.dead = True
        return False
    B.ops += 1
    return True


def _raw(addr, n):
    out = bytearray(n)
    i = 0
    while i < n:
        s, o = divmod(addr + i, SECTOR)
        k = min(n - i, SECTOR - o)
        data = B.sectors.get(s)
        out[i : i + k] = data[o : o + k] if data is not None else b"\xff" * k
        i += k
    return out


def flash_erase(addr, size):
    """esp_flash_erase_region over whole sectors; a cut leaves the sector half erased."""
    for s in range(addr // SECTOR, (addr + size) // SECTOR):
        if not _tick():
            data = B.sectors.setdefault(s, bytearray(b"\xff" * SECTOR))
            data[: SECTOR // 2] = b"\xff" * (SECTOR // 2)
            raise PowerCut()
        B.sectors.pop(s, None)


def flash_write(addr, data):
    """esp_flash_write: NOR programming only clears bits; a cut programs the first half."""
    data = bytes(data)
    whole = _tick()
    if not whole:
        data = data[: len(data) // 2]
    i = 0
    while i < len(data):
        s, o = divmod(addr + i, SECTOR)
        k = min(len(data) - i, SECTOR - o)
        cur = B.sectors.setdefault(s, bytearray(b"\xff" * SECTOR))
        if cur[o : o + k] == b"\xff" * k:
            cur[o : o + k] = data[i : i + k]
        else:
            for j in range(k):
                cur[o + j] &= data[i + j]
        i += k
    if not whole:
        raise PowerCut()


def _crypt(addr, data):
    # stands in for AES-XTS: erased flash no longer reads FF through an encrypted partition
    return bytes(b ^ ((addr + i) * 37 + 0x5A) & 0xFF for i, b in enumerate(data))


def _row(label=None, type=None, subtype=0xFF):
    for r in B.table:
        if (label is None or r[4] == label) and (type is None or r[0] == type):
            if subtype == 0xFF or r[1] == subtype:
                return r
    return None


def _encrypted(r):
    # esp_partition partition.c is_partition_encrypted: with flash encryption on, app
    # partitions and otadata are always encrypted
    return B.encrypted and (r[0] == 0 or (r[0] == 1 and r[1] == 0x00))


def part_read(r, off, n):
    """esp_partition_read: range checks, then the flash (decrypted when encrypted)."""
    if off > r[3]:
        raise esp_error(ESP_ERR_INVALID_ARG)
    if n > r[3] - off:
        raise esp_error(ESP_ERR_INVALID_SIZE)
    data = _raw(r[2] + off, n)
    return _crypt(r[2] + off, data) if _encrypted(r) else data


def part_write(r, off, data):
    """esp_partition_write (esp_flash_write_encrypted when encrypted: 16-byte aligned)."""
    if off > r[3]:
        raise esp_error(ESP_ERR_INVALID_ARG)
    if len(data) > r[3] - off:
        raise esp_error(ESP_ERR_INVALID_SIZE)
    if _encrypted(r):
        if (r[2] + off) % 16 or len(data) % 16:
            raise esp_error(ESP_ERR_INVALID_ARG)
        data = _crypt(r[2] + off, data)
    flash_write(r[2] + off, data)


def part_erase(r, off, size):
    """esp_partition_erase_range: sector aligned offset and size inside the partition."""
    if off > r[3]:
        raise esp_error(ESP_ERR_INVALID_ARG)
    if size > r[3] - off or size % SECTOR:
        raise esp_error(ESP_ERR_INVALID_SIZE)
    if off % SECTOR:
        raise esp_error(ESP_ERR_INVALID_ARG)
    flash_erase(r[2] + off, size)


# -- otadata (esp_ota_ops.c read_otadata / rewrite_ota_seq) --------------------------------
def _otadata_row():
    return _row(type=1, subtype=0x00)


def entries():
    """The two otadata entries as ports.otadata.unpack tuples (sector 0, sector 1)."""
    r = _otadata_row()
    return _od.unpack(part_read(r, 0, 32)), _od.unpack(part_read(r, SECTOR, 32))


def _rewrite(sector, seq, state):
    r = _otadata_row()
    part_erase(r, sector * SECTOR, SECTOR)
    part_write(r, sector * SECTOR, _od.pack(seq, state))


def _app_rows():
    return [r for r in B.table if r[0] == 0 and 0x10 <= r[1] < 0x20]


def _ota_row(slot):
    return _row(type=0, subtype=0x10 + slot)


def image_ok(r, load_mode=False):
    """esp_image_verify of the app in partition row `r` (bootloader_load_image if load_mode)."""
    try:
        _iv.verify(
            lambda off, n: part_read(r, off, n),
            r[2],
            r[3],
            B.chip,
            B.chip_rev,
            B.blk_rev,
            load_mode,
        )
    except (_iv.ImageInvalid, OSError):
        return False
    return True


# -- the second-stage bootloader ------------------------------------------------------------
def boot():
    """A reset: the bootloader picks and loads an app (ports.otadata.boot over the flash,
    load-time image check), writes otadata as it goes, and starts the app. Returns the slot."""
    B.running = None
    B.wdt = None  # a reset stops the task watchdog; nothing subscribes to it until WDT()
    B.rtc += B.ms // 1000  # the RTC keeps counting across a reset; ticks start again
    B.ms = 0
    e0, e1 = entries()
    slot, writes, trial = _od.boot(e0, e1, lambda s: image_ok(_ota_row(s), True))
    for w in writes:
        _rewrite(*w)
    if slot < 0:
        raise NoBoot("no bootable app partitions")
    B.running = _ota_row(slot)
    B.trial = trial
    B.boots.append((slot, trial))
    return slot


def power_on():
    """Power restored after a cut (or first power-up): RAM and RTC cleared, then boot()."""
    B.cut_at = None
    B.dead = False
    B.ms = 0
    B.rtc = 0
    return boot()


def advance(ms):
    """Time passes on the board; the task watchdog fires if it is not fed by its deadline."""
    B.ms += ms
    if B.wdt is not None and B.ms >= B.wdt[1]:
        raise Reset("wdt")


# -- esp32.Partition (esp32_partition.c) ----------------------------------------------------
class Partition:
    BOOT = 0
    RUNNING = 1
    TYPE_APP = 0
    TYPE_DATA = 1

    def __init__(self, id, block_size=SECTOR):
        if block_size != SECTOR:
            raise ValueError("the fake models the native 4096-byte block size only")
        if isinstance(id, int):
            if id == 0:
                r = _boot_row()
            elif id == 1:
                r = B.running
            else:
                raise ValueError()
        else:
            r = _row(id, 0) or _row(id, 1)
        if r is None:
            raise OSError(2)  # MP_ENOENT
        self._r = r

    @staticmethod
    def find(type=0, subtype=0xFF, label=None, block_size=SECTOR):
        return [
            Partition(r[4], block_size)
            for r in B.table
            if r[0] == type and (subtype == 0xFF or r[1] == subtype) and label in (None, r[4])
        ]

    def info(self):
        r = self._r
        return (r[0], r[1], r[2], r[3], r[4], _encrypted(r))

    def readblocks(self, block, buf, off=0):
        data = part_read(self._r, block * SECTOR + off, len(buf))
        buf[:] = data

    def writeblocks(self, block, buf, off=None):
        offset = block * SECTOR
        if off is None:  # a simple write erases first (esp_partition_erase_range)
            part_erase(self._r, offset, len(buf))
        else:
            offset += off
        part_write(self._r, offset, buf)

    def ioctl(self, cmd, arg):
        if cmd in (1, 2, 3):  # INIT, DEINIT, SYNC
            return 0
        if cmd == 4:
            return self._r[3] // SECTOR
        if cmd == 5:
            return SECTOR
        if cmd == 6:
            part_erase(self._r, arg * SECTOR, SECTOR)
            return 0
        return None

    def set_boot(self):
        """esp_ota_set_boot_partition: esp_image_verify, then esp_rewrite_ota_data."""
        r = self._r
        if r[0] != 0:
            raise esp_error(ESP_ERR_INVALID_ARG)
        if not image_ok(r):
            raise esp_error(ESP_ERR_OTA_VALIDATE_FAILED)
        if _otadata_row() is None:
            raise esp_error(ESP_ERR_NOT_FOUND)
        slot = r[1] - 0x10
        if not 0 <= slot < len(_app_rows()):
            raise esp_error(ESP_ERR_INVALID_ARG)
        e0, e1 = entries()
        _rewrite(*_od.arm(e0, e1, slot))

    def get_next_update(self):
        """esp_ota_get_next_update_partition: the OTA slot after this one, else the first."""
        apps = _app_rows()
        for i in range(len(apps)):
            if apps[i] == self._r and i + 1 < len(apps):
                return Partition(apps[i + 1][4])
        return Partition(apps[0][4])

    @staticmethod
    def mark_app_valid_cancel_rollback():
        """esp_ota_current_ota_is_workable(true): the ACTIVE entry VALID, whatever runs."""
        if _otadata_row() is None:
            raise esp_error(ESP_ERR_NOT_FOUND)
        e0, e1 = entries()
        try:
            w = _od.mark_valid(e0, e1)
        except ValueError:
            raise esp_error(ESP_FAIL) from None  # "Running firmware is factory"
        if w is not None:
            _rewrite(*w)


def _boot_row():
    """esp_ota_get_boot_partition: the slot the active entry names, else the first OTA slot."""
    e0, e1 = entries()
    active = _od.select(e0, e1)
    if active < 0:
        return _app_rows()[0]
    return _ota_row(_od.slot_of((e0, e1)[active][0]))


# -- machine ---------------------------------------------------------------------------------
class WDT:
    """machine_wdt.c: id 0 only, timeout > 0 ms; a second WDT() reconfigures the one task
    watchdog user (new timeout, timer restarted); there is no way to stop it."""

    def __init__(self, id=0, timeout=5000):
        if id != 0:
            raise ValueError()
        if timeout <= 0:
            raise ValueError("WDT timeout too short")
        B.wdt = [timeout, B.ms + timeout]

    def feed(self):
        advance(0)  # a watchdog that already fired has reset the board
        B.wdt[1] = B.ms + B.wdt[0]


def _days(y, m, d):
    # days from 2000-01-01 (civil calendar)
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 730425


class RTC:
    def datetime(self, t=None):
        if t is None:
            g = _gmtime(_time())
            return (g[0], g[1], g[2], g[6], g[3], g[4], g[5], 0)
        secs = _days(t[0], t[1], t[2]) * 86400 + t[4] * 3600 + t[5] * 60 + t[6]
        B.rtc = secs - B.ms // 1000
        return None


def reset():
    raise Reset("soft")


class UART:
    def __init__(self, id, baudrate=115200, tx=None, rx=None, rxbuf=256, timeout=0):
        self.rxbuf = rxbuf  # the ring uart_driver_install is given; what overflows it is lost
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


# -- time as MicroPython on ESP32 has it: epoch 2000, RTC from 0 after power-on ---------------
def _time():
    return B.rtc + B.ms // 1000


def _gmtime(secs=None):
    t = _rt.gmtime((_time() if secs is None else secs) + _EPOCH_2000)
    return tuple(t[i] for i in range(8))


def _sleep_ms(ms):
    advance(ms)


class _Module:
    pass


def _modules():
    esp32 = _Module()
    esp32.Partition = Partition
    machine = _Module()
    machine.UART, machine.WDT, machine.RTC, machine.reset = UART, WDT, RTC, reset
    t = _Module()
    t.time = _time
    t.gmtime = t.localtime = _gmtime
    t.ticks_ms = lambda: B.ms % _TICKS_PERIOD
    t.ticks_add = lambda a, d: (a + d) % _TICKS_PERIOD
    t.ticks_diff = lambda a, b: ((a - b + _TICKS_PERIOD // 2) % _TICKS_PERIOD) - _TICKS_PERIOD // 2
    t.sleep_ms = _sleep_ms
    t.sleep = lambda s: advance(int(s * 1000))
    return esp32, machine, t


class Store:
    """A KVStore stand-in on LittleFS as the board has it: each put is one atomic flash
    operation (a cut leaves the old value), contents survive resets and power cuts."""

    def get(self, name):
        return B.store.get(name)

    def put(self, name, data):
        if not _tick():
            raise PowerCut()
        B.store[name] = bytes(data.encode() if isinstance(data, str) else data)

    def put_json(self, name, obj):
        import json

        self.put(name, json.dumps(obj))

    def delete(self, name):
        B.store.pop(name, None)

    def names(self):
        return sorted(B.store)


def install(board, chip_rev=None, blk_rev=0, encrypted=False):
    """A blank board laid out as `board` (a board.json dict); `import esp32` and `import
    machine` give the fakes. ESP32 v3.1 / ESP32-S3 v0.2 unless chip_rev says otherwise."""
    global B
    if chip_rev is None:
        chip_rev = 301 if board["chip"] == "esp32" else 2
    B = Board(board, chip_rev, blk_rev, encrypted)
    esp32, machine, _t = _modules()
    sys.modules["esp32"] = esp32
    sys.modules["machine"] = machine
    return B


def port_module():
    """ports/esp32.py imported afresh with the fake `time` (only that module sees it)."""
    _e, _m, t = _modules()
    saved = sys.modules.get("time")
    sys.modules["time"] = t
    sys.modules.pop("ports.esp32", None)
    try:
        __import__("ports.esp32")
        return sys.modules["ports.esp32"]
    finally:
        if saved is not None:
            sys.modules["time"] = saved
        else:
            sys.modules.pop("time", None)


def flash_app(label, data):
    """What esptool write-flash does to a partition (erase, write; no image check)."""
    r = _row(label)
    size = (len(data) + SECTOR - 1) // SECTOR * SECTOR
    part_erase(r, 0, size)
    part_write(r, 0, data)


def slot_hash(slot):
    """The appended SHA-256 of the image in an OTA slot (the last 32 bytes of the image)."""
    r = _ota_row(slot)
    end = _iv.verify(lambda off, n: part_read(r, off, n), r[2], r[3], B.chip, B.chip_rev, B.blk_rev)
    return bytes(part_read(r, end - 32, 32))


def read_slot(slot, n, off=0):
    """n bytes at `off` in OTA slot `slot`, as the app reads them."""
    return bytes(part_read(_ota_row(slot), off, n))
