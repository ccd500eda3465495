"""Port conformance suite: run_conformance(port) checks a port against the contract, on the board.

Prints one "PASS name" / "FAIL name: why" line per check and "CONFORMANCE passed/total".
It scribbles on the update slot (never the running one); with otadata=True it also
arms the update slot (set_pending): only do that where the next boot is supervised.
"""

import json

_PATTERN = b"hanota-conformance-0123456789abcdef" * 4


def _check_geometry(port):
    assert port.block_size == 4096, "block_size %d" % port.block_size
    assert port.slot_size % port.block_size == 0, "slot_size not whole blocks"
    assert port.slot_size >= 16 * port.block_size, "slot too small"


def _check_round_trip(port):
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


def _check_write_unerased(port):
    port.erase(1)
    port.write(4096, b"\x00\x00")
    try:
        port.write(4096, b"\x00\x00")
    except (ValueError, OSError):
        port.erase(1)
        return
    raise AssertionError("write over unerased bytes was accepted")


def _check_bounds(port):
    buf = bytearray(16)
    try:
        port.read(port.slot_size - 8, buf)
    except (ValueError, OSError):
        return
    raise AssertionError("read past the end of the slot was accepted")


def _check_app_refused(port):
    port.erase(0)
    port.write(0, _PATTERN)
    try:
        port.check_app(len(_PATTERN))
    except ValueError:
        port.erase(0)
        return
    raise AssertionError("check_app accepted a slot holding no app")


def _check_store(port):
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


def _check_link(port):
    buf = bytearray(32)
    t0 = port.ticks_ms()
    n = port.link.readinto(buf, 200)
    waited = port.ticks_ms() - t0
    assert n == 0 or 0 < n <= len(buf), "readinto returned %r" % (n,)
    assert n or 150 <= waited < 2000, "timeout of 200 ms took %d ms" % waited
    port.link.write(b"conformance\n")


def _check_time(port):
    now = port.now()
    assert 700000000 < now < 2000000000, "now() %d is not ZigBee UTC seconds" % now
    t0 = port.ticks_ms()
    port.sleep_ms(20)
    assert port.ticks_ms() - t0 >= 15, "sleep_ms(20) returned early"


def _check_version(port):
    v = port.running_version()
    assert 0 <= v <= 0xFFFFFFFF, "running_version %r" % (v,)
    assert isinstance(port.board, dict) and "manufacturer_code" in port.board, "board"


def _check_otadata(port):
    was = port.pending_verify()
    port.confirm()
    assert not port.pending_verify(), "still pending after confirm()"
    port.set_pending()
    assert not port.pending_verify(), "set_pending changed the running app's state"
    print("OTADATA pending_before=%d" % was)


CHECKS = (
    ("geometry", _check_geometry),
    ("round_trip", _check_round_trip),
    ("write_unerased", _check_write_unerased),
    ("bounds", _check_bounds),
    ("app_refused", _check_app_refused),
    ("store", _check_store),
    ("link", _check_link),
    ("time", _check_time),
    ("version", _check_version),
)


def run_conformance(port, otadata=False):
    """Run every check; returns the number that failed (0 = conformant)."""
    checks = CHECKS + ((("otadata", _check_otadata),) if otadata else ())
    failed = 0
    for name, fn in checks:
        try:
            fn(port)
            print("PASS " + name)
        except Exception as e:  # report every failure, keep going (MemoryError included)
            failed += 1
            print("FAIL %s: %s %s" % (name, type(e).__name__, e))
    print("CONFORMANCE %d/%d" % (len(checks) - failed, len(checks)))
    return failed
