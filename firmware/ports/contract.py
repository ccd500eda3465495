"""The port contract: one documented function per operation a board port provides, and
check(port) for its shape. Read by porters and run by the conformance suite, not by the agent.

A port is one module, firmware/ports/<name>.py, named by the board definition's "port"
field, with a class Port(board) (ports.make_port builds it; board is the board.json dict).
The agent calls the port's methods directly; each function here says what that method
must do. Units: offsets and lengths in bytes within the update slot, times in ms unless
named seconds. Errors: PortError (ports/slot.py, a ValueError with .code) unless stated.
Write them in this order: the update slot, check_app, the boot state, the watchdog, the
link, the clock and the rest; then run ports/conformance.py on the board.
"""

from ports.slot import PortError  # noqa: F401 - the contract's error, re-exported


# -- the update slot: forward to ports.slot's erase/write/read over the board's block device
def geometry(port):
    """(block_size, slot_size): attributes, in bytes. block_size is the erase unit (4096 on
    the ESP32 and sim boards); slot_size is a whole number of blocks, the update slot's size."""
    return port.block_size, port.slot_size


def erase(port, block):
    """Erase block number `block` (0 .. slot_size // block_size - 1) of the update slot to
    0xFF. Raises PortError BAD_BLOCK outside the slot."""
    port.erase(block)


def write(port, offset, buf):
    """Program `buf` at `offset` in the update slot, without erasing. The core writes 1 KB
    chunks at 1 KB-aligned offsets. Raises PortError BAD_RANGE outside the slot and
    NOT_ERASED (before programming anything) when any byte there is not 0xFF."""
    port.write(offset, buf)


def read(port, offset, buf):
    """Fill `buf` from `offset` in the update slot. Raises PortError BAD_RANGE outside it."""
    port.read(offset, buf)


def read_running(port, offset, buf):
    """Fill `buf` from `offset` in the running slot (a delta update's base; never written).
    Raises PortError BAD_RANGE outside it."""
    port.read_running(offset, buf)


def check_app(port, length):
    """Raise a ValueError (PortError, EspImageError) saying why unless the first `length`
    bytes of the update slot are an app this board's bootloader will boot (right chip/board,
    complete, its hash matching). Returns the app's own u32 version where the port can read
    one (the agent refuses an app whose version is not the manifest's), else None. Must accept
    a good app: a port that refuses everything can never activate an update."""
    return port.check_app(length)


# -- boot state: the bootloader's rollback (ports/otadata.py on ESP-IDF boards) -----------
def set_pending(port, version):
    """Arm the update slot for ONE trial boot at the next reset; `version` is the u32 being
    activated. A port that cannot read running_version() from the app records it here
    first. Any failure raises PortError VALIDATE_FAILED or ARM_FAILED, never OSError."""
    port.set_pending(version)


def pending_verify(port):
    """True while the running app is on its trial boot (armed, booted, not yet confirmed)."""
    return port.pending_verify()


def confirm(port):
    """Make the running trial app permanent. Does nothing unless the running slot is the
    bootloader's active choice and on trial: it never disarms an armed update slot."""
    port.confirm()


def running_version(port):
    """The u32 version of the running app, or None when the board cannot tell (never 0 as a
    stand-in)."""
    return port.running_version()


def reset(port):
    """Reset the board now; does not return."""
    port.reset()


# -- the watchdog: how a hanging trial boot rolls back -------------------------------------
def watchdog(port, ms):
    """Arm a hardware watchdog of `ms` milliseconds that resets the board unless fed; it
    cannot be disarmed (ESP32: machine.WDT(timeout=ms)). main.py arms it on a trial boot
    before importing the agent."""
    port.watchdog(ms)


def feed(port):
    """Feed the watchdog (a no-op while it is not armed). Cheap: the agent calls it at every
    loop step."""
    port.feed()


# -- the HAN link, the clock, the store, the console ---------------------------------------
def link(port):
    """port.link, never None: readinto(buf, timeout_ms) -> bytes read (0 after timeout_ms
    with nothing), write(buf) -> bytes written."""
    return port.link


def now(port):
    """ZigBee UTC seconds (since 2000-01-01). Before set_now() it reads as a fresh ESP32's
    clock does after power-on: ~0 plus the seconds since boot."""
    return port.now()


def set_now(port, t):
    """Set the clock so that now() reads `t` (ZigBee UTC seconds) from here on. Required:
    the agent sets it from the CH's currentTime."""
    port.set_now(t)


def ticks_ms(port):
    """A millisecond counter for intervals (wraps as time.ticks_ms does)."""
    return port.ticks_ms()


def sleep_ms(port, ms):
    port.sleep_ms(ms)


def store(port):
    """port.store: a KVStore (otaclient/kvstore.py) on the board's own filesystem that
    survives resets and power cuts: get(name) -> bytes or None, put(name, data),
    put_json(name, obj), delete(name)."""
    return port.store


def board(port):
    """port.board: the board.json dict; the agent reads manufacturer_code, image_type,
    hw_version; main.py reads watchdog_ms."""
    return port.board


def log(port, msg):
    """Print `msg` on the console, or drop it on a board whose console is off."""
    port.log(msg)


_METHODS = ("erase", "write", "read", "check_app", "set_pending", "pending_verify", "confirm",
            "running_version", "reset", "watchdog", "feed", "now", "set_now", "ticks_ms",
            "sleep_ms", "log")  # fmt: skip
_BOARD_KEYS = ("manufacturer_code", "image_type", "hw_version", "watchdog_ms")


def check(port):
    """Problems with the shape of `port` (a list of strings, empty when it has them all)."""
    bad = []
    for name in _METHODS:
        if not callable(getattr(port, name, None)):
            bad.append("no method " + name)
    bs = getattr(port, "block_size", None)
    size = getattr(port, "slot_size", None)
    if not isinstance(bs, int) or bs <= 0:
        bad.append("block_size is not a positive int")
    elif not isinstance(size, int) or size <= 0 or size % bs:
        bad.append("slot_size is not a whole number of blocks")
    ln = getattr(port, "link", None)
    if (
        ln is None
        or not callable(getattr(ln, "readinto", None))
        or not callable(getattr(ln, "write", None))
    ):
        bad.append("link is None or lacks readinto/write")
    st = getattr(port, "store", None)
    for name in ("get", "put", "put_json", "delete"):
        if not callable(getattr(st, name, None)):
            bad.append("store has no " + name)
    b = getattr(port, "board", None)
    if not isinstance(b, dict):
        bad.append("board is not a dict")
    else:
        for key in _BOARD_KEYS:
            if not isinstance(b.get(key), int):
                bad.append("board has no int " + key)
    return bad
