"""Port conformance checks, run on the board: one function per check, PASS/FAIL lines.
Checks that need a reboot are steps a driver (pytest, or a port's fake) runs boot after boot.

Without a reboot: run_conformance(port) runs CHECKS and prints "PASS name" / "FAIL name:
why" and "CONFORMANCE passed/total". It scribbles on the update slot, never the running one.

Across reboots, with a known-good app for this board (a file the board can open, its length
and u32 version) and the running app's version `prev`, the driver runs, one boot each:
  1. step(port, "stage_app", path, length, version): staged, check_app passes, armed;
  2. (reset) step(port, "trial_boot", version) then step(port, "confirm") then
     step(port, "rearm", prev): confirm() after set_pending() must leave the slot armed;
  3. (reset) step(port, "confirm_keeps_armed"): the re-armed app boots as a trial; then
     step(port, "watchdog", ms): armed, never fed, prints "WATCHDOG ARMED" and hangs;
  4. (the board resets by itself) step(port, "watchdog_rollback", version).
"""

import json

_PATTERN = b"hanota-conformance-0123456789abcdef" * 4
_T = 800000000  # a ZigBee UTC time (2025-05-09) for the clock check


def check_contract(port):
    from ports.contract import check

    bad = check(port)
    assert not bad, "; ".join(bad)


def check_geometry(port):
    assert port.block_size == 4096, "block_size %d" % port.block_size
    assert port.slot_size % port.block_size == 0, "slot_size not whole blocks"
    assert port.slot_size >= 16 * port.block_size, "slot too small"


def check_round_trip(port):
    last = port.slot_size // port.block_size - 1
    for block in (0, last):
        port.erase(block)
        base = block * port.block_size
        buf = bytearray(len(_PATTERN))
        port.read(base + 100, buf)
        assert buf == b"\xff" * len(buf), "erased block %d not 0xFF" % block
        port.write(base + 100, _PATTERN)
        port.read(base + 100, buf)
        assert buf == _PATTERN, "read back differs in block %d" % block
        port.erase(block)


def check_write_unerased(port):
    port.erase(1)
    port.write(4096, b"\x00\x00")
    try:
        port.write(4096, b"\x00\x00")
    except ValueError as e:
        assert getattr(e, "code", None) == "NOT_ERASED", "refused with %r" % (e,)
        port.erase(1)
        return
    raise AssertionError("write over programmed bytes was accepted")


def check_bounds(port):
    for fn in (
        lambda: port.read(port.slot_size - 8, bytearray(16)),
        lambda: port.write(port.slot_size, b"\xff"),
        lambda: port.erase(port.slot_size // port.block_size),
    ):
        try:
            fn()
        except ValueError as e:
            assert getattr(e, "code", None) in ("BAD_RANGE", "BAD_BLOCK"), "raised %r" % (e,)
            continue
        raise AssertionError("an access outside the slot was accepted")


def check_app_refused(port):
    port.erase(0)
    port.write(0, _PATTERN)
    try:
        port.check_app(len(_PATTERN))
    except ValueError:
        port.erase(0)
        return
    raise AssertionError("check_app accepted a slot holding no app")


def check_store(port):
    st = port.store
    st.put("conformance.tmp1", b"one")
    st.put("conformance.tmp1", b"two")
    assert st.get("conformance.tmp1") == b"two", "put did not replace"
    st.delete("conformance.tmp1")
    assert st.get("conformance.tmp1") is None, "delete left a value"
    st.delete("conformance.tmp1")  # idempotent
    assert st.get("conformance.absent") is None, "absent name not None"
    rec = {"a": [1, "x", None], "b": {"c": 2}}
    st.put_json("conformance.tmp2", rec)
    assert json.loads(st.get("conformance.tmp2")) == rec, "put_json did not store the JSON"
    st.delete("conformance.tmp2")


def check_link(port):
    assert port.link is not None, "port.link is None"
    buf = bytearray(32)
    t0 = port.ticks_ms()
    n = port.link.readinto(buf, 200)
    waited = port.ticks_ms() - t0
    assert n == 0 or 0 < n <= len(buf), "readinto returned %r" % (n,)
    assert n or 150 <= waited < 2000, "timeout of 200 ms took %d ms" % waited
    port.link.write(b"conformance\n")


def check_clock(port):
    """now() is ZigBee seconds; set_now(t) sets it and it runs on from there."""
    t = port.now()
    assert isinstance(t, int) and t >= 0, "now() %r" % (t,)
    port.set_now(_T)
    t = port.now()
    assert _T <= t <= _T + 2, "now() %d just after set_now(%d)" % (t, _T)
    port.sleep_ms(1100)
    assert _T + 1 <= port.now() <= _T + 3, "the clock did not run on after set_now"


def check_clock_fresh(port):
    """First thing after power-on: an unset clock reads as a fresh ESP32's (~0 + uptime)."""
    t = port.now()
    assert 0 <= t < 600, "unset now() %d is not a fresh clock (~seconds since power-on)" % t


def check_version(port):
    v = port.running_version()
    assert v is None or (isinstance(v, int) and 0 < v <= 0xFFFFFFFF), "running_version %r" % (v,)
    assert isinstance(port.board, dict) and "manufacturer_code" in port.board, "board"


def check_feed_unarmed(port):
    port.feed()  # feeding a watchdog nobody armed does nothing


CHECKS = (
    ("contract", check_contract),
    ("geometry", check_geometry),
    ("round_trip", check_round_trip),
    ("write_unerased", check_write_unerased),
    ("bounds", check_bounds),
    ("app_refused", check_app_refused),
    ("store", check_store),
    ("link", check_link),
    ("clock", check_clock),
    ("version", check_version),
    ("feed_unarmed", check_feed_unarmed),
)


# -- the steps across reboots (see the module docstring for the order) ---------------------
def stage_app(port, path, length, version):
    """Stage the known-good app: erase, write, check_app must pass, set_pending(version)."""
    buf = bytearray(1024)
    mv = memoryview(buf)
    bs = port.block_size
    with open(path, "rb") as f:
        off = 0
        while off < length:
            n = f.readinto(buf)
            assert n, "the app file is shorter than %d bytes" % length
            n = min(n, length - off)
            if off % bs == 0:
                port.erase(off // bs)
            port.write(off, mv[:n])
            off += n
    port.check_app(length)  # a port that refuses a good app can never activate one
    port.set_pending(version)
    assert not port.pending_verify(), "arming changed the running app's state"


def trial_boot(port, version):
    assert port.pending_verify(), "the armed app did not boot as a trial"
    v = port.running_version()
    assert v == version, "running_version %r, activated %r" % (v, version)


def confirm(port):
    assert port.pending_verify(), "not on a trial boot"
    port.confirm()
    assert not port.pending_verify(), "still on trial after confirm()"
    port.confirm()  # a second confirm() does nothing


def rearm(port, prev):
    """Arm the update slot (it holds the app that ran before), then confirm() again."""
    port.set_pending(prev)
    port.confirm()  # must not disarm: the running app is no longer on trial


def confirm_keeps_armed(port):
    assert port.pending_verify(), "confirm() after set_pending() disarmed the update slot"


def watchdog(port, ms):
    """Arm the watchdog and never feed it: the board must reset and roll back."""
    assert port.pending_verify(), "the watchdog step needs a trial boot"
    port.watchdog(ms)
    print("WATCHDOG ARMED %d" % ms)
    while True:
        port.sleep_ms(100)


def watchdog_rollback(port, version):
    assert not port.pending_verify(), "still on trial after the watchdog reset"
    v = port.running_version()
    assert v == version, "running_version %r after rollback, expected %r" % (v, version)


STEPS = {
    "clock_fresh": check_clock_fresh,
    "stage_app": stage_app,
    "trial_boot": trial_boot,
    "confirm": confirm,
    "rearm": rearm,
    "confirm_keeps_armed": confirm_keeps_armed,
    "watchdog": watchdog,
    "watchdog_rollback": watchdog_rollback,
}


def _report(name, fn, args):
    try:
        fn(*args)
        print("PASS " + name)
        return True
    except Exception as e:  # report every failure, keep going (MemoryError included)
        print("FAIL %s: %s %s" % (name, type(e).__name__, e))
        return False


def step(port, name, *args):
    """Run one step (or check) by name, printing its PASS/FAIL line; True when it passed."""
    fn = STEPS.get(name) or dict(CHECKS)[name]
    return _report(name, fn, (port,) + args)


def run_conformance(port):
    """Run every check that needs no reboot; returns the number that failed (0 = conformant)."""
    failed = 0
    for name, fn in CHECKS:
        failed += not _report(name, fn, (port,))
    print("CONFORMANCE %d/%d" % (len(CHECKS) - failed, len(CHECKS)))
    return failed
