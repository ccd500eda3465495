"""The ESP32 port: the update slot (ports.slot over esp32.Partition), otadata rollback through
ports.otadata, machine.WDT, machine.UART for the HAN link, LittleFS store at /data.

The only file that imports `esp32` or `machine`, lazily. It does not parse OTA files, decide
policy or hold images in RAM; image checks live in ports/esp32_image.py. Flash encryption is
not supported: staging is refused on a board that has it on.
"""

import os
import time
from binascii import hexlify

from micropython import const

from ports import esp32_image, otadata, slot
from ports.slot import PortError

_BLOCK = const(4096)
_SUBTYPE_OTA_0 = const(0x10)  # ESP_PARTITION_SUBTYPE_APP_OTA_0
_SUBTYPE_DATA_OTA = const(0x00)  # ESP_PARTITION_SUBTYPE_DATA_OTA: otadata, found as ESP-IDF does
_VALIDATE_FAILED = const(-5379)  # OSError of ESP_ERR_OTA_VALIDATE_FAILED (check_esp_err: -code)
_DESC_VERSION = const(0x30)  # esp_app_desc_t.version, 32 bytes, in the first segment
_STORE_DIR = "/data"
# store name of the activation record: {"<slot>": ["<appended SHA-256 hex>", version], ...},
# one entry per OTA slot, the version set_pending armed that slot's image with
VERSIONS = "slot_versions"
_ZIGBEE_EPOCH_FROM_1970 = const(946684800)  # 2000-01-01T00:00:00Z in POSIX seconds
_UNSET = const(-1)


class Uart:
    """The HAN link: readinto(buf, timeout_ms) -> n (0 on timeout), write(buf)."""

    def __init__(self, cfg):
        import machine

        # the receive ring holds all the CH can have in flight to the board: one and a half
        # pipelined pages of Image Block Responses (4,064 data bytes a page, ~27
        # bytes of framing a block: ~6.8 KB), so no flash erase or signature check that
        # stalls the loop can overflow it, at any baud (2 KB is 22 ms of line at 921600)
        self.uart = machine.UART(cfg["id"], baudrate=cfg["baud"], tx=cfg["tx"], rx=cfg["rx"],
                                 rxbuf=cfg.get("rxbuf", 8192), timeout=0)  # fmt: skip

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
    """The port contract (docs/porting.md) on ESP32 / ESP32-S3 with stock MicroPython."""

    block_size = _BLOCK

    def __init__(self, board, link=None, store=None):
        from esp32 import Partition

        self.board = board
        self._Partition = Partition
        self._running = Partition(Partition.RUNNING)
        self._run_slot = self._running.info()[1] - _SUBTYPE_OTA_0
        update = self._running.get_next_update()
        self._update = update
        self.slot_size = update.ioctl(4, 0) * update.ioctl(5, 0)  # block count, block size
        self._scratch = bytearray(256)  # ports.slot's erased check
        # esp_partition marks every app partition encrypted when flash encryption is on
        # (partition.c is_partition_encrypted reads the eFuse): a reliable on-board test
        self._encrypted = update.info()[5]
        found = Partition.find(Partition.TYPE_DATA, _SUBTYPE_DATA_OTA)
        self._otadata = found[0] if found else None
        self._run_hash = self._running_hash()
        self._version = _UNSET
        self._trial = self.pending_verify()
        self._wdt = None
        self._console = self.board.get("console", "on") == "on"
        self.store = store if store is not None else open_store(self.board)
        self.link = link if link is not None else Uart(self.board["han_uart"])

    # -- update slot ---------------------------------------------------------------
    def erase(self, block):
        self._may_stage()
        slot.erase(self._update, self.slot_size, block)

    def write(self, offset, buf):
        self._may_stage()
        slot.write(self._update, self.slot_size, offset, buf, self._scratch)

    def read(self, offset, buf):
        slot.read(self._update, self.slot_size, offset, buf)

    def read_running(self, offset, buf):
        slot.read(self._running, self._running.info()[3], offset, buf)

    def _may_stage(self):
        # encrypted writes must be 16-byte aligned and erased flash reads back as decrypted
        # noise (esp_flash_write_encrypted, esp_partition_read): the erased check and the
        # core's last short write cannot work, so nothing is staged
        if self._encrypted:
            raise PortError("ENCRYPTED", "flash encryption is on; this agent needs it off")
        # on a trial boot the update slot holds the image the bootloader rolls back to
        if self._trial:
            raise PortError("TRIAL", "the running app is on trial: confirm it before staging")

    def check_app(self, length):
        """Refuse anything but an app-only ESP image for this chip that fits the slot and
        whose appended SHA-256 matches what is now in flash (set_boot() checks more).
        Returns the app descriptor's version when the build was given one ("0x01020304"),
        else None (stock builds)."""
        info = esp32_image.check_app(self.read, length, self.board["chip"], self.slot_size)
        return esp32_image.parse_version(info[2])

    # -- boot selection ------------------------------------------------------------
    def set_pending(self, version):
        """Record `version` for the slot's image hash, then arm the slot for one trial boot
        (set_boot: esp_image_verify, then a NEW otadata entry; the bootloader boots it once
        as PENDING_VERIFY and rolls back at the next reset unless confirmed)."""
        if self._trial:  # arming now would leave no confirmed app to roll back to
            raise PortError("ARM_FAILED", "the running app is on trial: confirm it first")
        try:
            digest = esp32_image.appended_hash(self.read, self.slot_size)
        except ValueError as e:
            raise PortError("VALIDATE_FAILED", str(e))
        try:
            self._record(self._slot_of_update(), digest, version)
        except OSError as e:
            raise PortError("ARM_FAILED", "version record: OSError %s" % e.args[0])
        active = self._active()
        if active is not None and active[1] == otadata.NEW and active[0] != self._run_slot:
            # armed already since the last boot (a boot turns NEW into PENDING_VERIFY): a
            # second esp_rewrite_ota_data would overwrite the running slot's entry in the
            # other sector with a copy, and after two failed trials the bootloader, finding
            # both ABORTED, would start ota_0 whatever it holds. The load-time check still
            # verifies the image at boot.
            return
        try:
            self._update.set_boot()
        except OSError as e:
            if e.args[0] == _VALIDATE_FAILED:
                raise PortError("VALIDATE_FAILED", "set_boot: ESP-IDF esp_image_verify refused it")
            raise PortError("ARM_FAILED", "set_boot: OSError %s" % e.args[0])

    def _slot_of_update(self):
        return self._update.info()[1] - _SUBTYPE_OTA_0

    def _record(self, slot, digest, version):
        rec = self._records()
        keep = rec.get(str(self._run_slot))
        new = {str(slot): [hexlify(digest).decode(), version]}
        if keep is not None and slot != self._run_slot:
            new[str(self._run_slot)] = keep
        self.store.put_json(VERSIONS, new)

    def _records(self):
        import json

        raw = self.store.get(VERSIONS)
        try:
            rec = json.loads(raw) if raw else {}
        except ValueError:
            return {}  # a record this port did not write: ignore it
        return rec if isinstance(rec, dict) else {}

    def confirm(self):
        """Mark the running app valid, only while it is the active otadata entry on its
        trial boot. mark_app_valid_cancel_rollback marks the ACTIVE entry whatever runs: after
        set_pending in this boot that is the armed slot, and rollback would be disarmed."""
        if not self.pending_verify():
            return
        try:
            self._Partition.mark_app_valid_cancel_rollback()
        except OSError as e:
            raise PortError("CONFIRM_FAILED", "OSError %s" % e.args[0])
        self._trial = False

    def pending_verify(self):
        """True while the running slot is the active otadata entry in PENDING_VERIFY."""
        active = self._active()
        return active is not None and active == (self._run_slot, otadata.PENDING_VERIFY)

    def _active(self):
        """(slot, state) of the otadata entry the bootloader follows, or None."""
        if self._otadata is None:
            return None
        e = bytearray(otadata.ENTRY_LEN)
        self._otadata.readblocks(0, e)
        e0 = otadata.unpack(e)
        self._otadata.readblocks(1, e)
        e1 = otadata.unpack(e)
        i = otadata.select(e0, e1)
        if i < 0:
            return None
        seq, state, _ = (e0, e1)[i]
        return otadata.slot_of(seq), state

    # -- versions ------------------------------------------------------------------
    def _running_hash(self):
        run = self._running
        size = run.info()[3]
        try:
            # readblocks(0, buf, off) reads at any offset (esp_partition_read)
            return esp32_image.appended_hash(lambda off, buf: run.readblocks(0, buf, off), size)
        except ValueError:
            return None  # no appended SHA-256: no record can name this image

    def running_version(self):
        """The version set_pending recorded for the running slot's image (its appended
        SHA-256 must match); else an app descriptor version "0x01020304"; else None. Stock
        builds leave the descriptor version empty (CONFIG_APP_EXCLUDE_PROJECT_VER_VAR=y)."""
        if self._version == _UNSET:
            self._version = self._recorded()
            if self._version is None:
                self._version = self._descriptor_version()
        return self._version

    def _recorded(self):
        if self._run_hash is None:
            return None
        entry = self._records().get(str(self._run_slot))
        if not isinstance(entry, list) or len(entry) != 2:
            return None
        if entry[0] != hexlify(self._run_hash).decode() or not isinstance(entry[1], int):
            return None
        return entry[1] if 0 <= entry[1] <= 0xFFFFFFFF else None

    def _descriptor_version(self):
        head = bytearray(esp32_image.HEAD_LEN)
        self._running.readblocks(0, head)
        try:
            esp32_image.check_head(head, self.board["chip"], self.slot_size, self.slot_size)
            text = bytes(head[_DESC_VERSION : _DESC_VERSION + 32]).split(b"\x00")[0].decode()
        except ValueError:  # EspImageError, UnicodeError
            return None
        return esp32_image.parse_version(text)

    def running_slot(self):
        return self._running.info()[4]

    # -- watchdog, reset -------------------------------------------------------------
    def watchdog(self, ms):
        """Arm the task watchdog for `ms` (> 0) milliseconds. machine_wdt.c: WDT(timeout=ms)
        subscribes a user to ESP-IDF's task watchdog and reconfigures its timeout; it panics
        and resets the board unless fed in time. It cannot be stopped; a second call only
        sets a new timeout. ms <= 0 raises ValueError; the timer counts 2 kHz ticks in 32 bits
        with a 2 * ms second stage, so stay well under 12 days."""
        import machine

        self._wdt = machine.WDT(timeout=ms)

    def feed(self):
        if self._wdt is not None:
            self._wdt.feed()

    def reset(self):
        import machine

        machine.reset()

    # -- time, log -----------------------------------------------------------------
    def now(self):
        """ZigBee UTC seconds. After power-on the RTC reads 2000-01-01, ZigBee 0, until
        set_now(): the agent sets it from the CH's currentTime."""
        return time.time() - _epoch_offset()

    def set_now(self, zigbee_utc):
        """Set the RTC from a ZigBee UTC time (the CH's currentTime)."""
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


Port = Esp32Port  # ports.make_port() builds Port(board)


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
