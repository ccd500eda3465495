"""QUALITY.md's bad-input list through the real interfaces: the host tool (`hanota image
verify/inspect`), hub submission, the agent on the fake board against the CH double
(CPython), the agent under MicroPython, and a sim board over its HAN pty. Each test
asserts the error code or ZCL status and that flash, staged progress and the hub's
inventory did not change, and is marked `@pytest.mark.bad_input(ITEM, ...)`, as are the
tests in other files that prove an item. docs/reliability.md's table names, per item id,
every test so marked; `test_the_table_names_every_test_marked_for_each_item` holds the
table and the marks equal, and `test_the_table_lists_quality_md_s_bad_input_items` the
table's items and QUALITY.md's list.
"""

from __future__ import annotations

import json
import os
import select
import time

import agent_util as U
import badinput_util as B
import harness as H
import pytest
from fakes import fake_app
from hanota import paths
from hanota.board import defs
from hanota.hub import Hub, HubError
from hanota.image import keys
from hanota.rig import factory, simboards
from hanota.rig.factory import Images
from hanota.sim.runner import SimBoard
from mpy_agent import run_agent_mpy
from otaclient import link, zcl

V2 = B.V2  # the fake board runs U.V1; images below are V2 unless said otherwise
INVALID = zcl.INVALID_IMAGE


@pytest.fixture(scope="module")
def dev():
    """A sim-ppmid device record (identity, record) for hub submissions."""
    return factory.device("sim-ppmid", ["supplier-a", "supplier-b"], seed="bad-input")


# --- the three interfaces, once each ----------------------------------------------------


def good() -> bytes:
    """One signed single-file image for the fake board (= sim-ppmid's mfr/type/hw)."""
    return B.one()[0]


def verify_code(tmp_path, data: bytes, *extra: str, key=None) -> str:
    """`hanota image verify FILE --pubkey P`: non-zero exit; the code it names."""
    f, pub = tmp_path / "in.zigbee", tmp_path / "pub.pem"
    f.write_bytes(data)
    pub.write_bytes(keys.public_pem((key or U.mkey()).public_key()))
    res = B.hanota("verify", f, "--pubkey", pub, *extra, ok=False)
    assert res.returncode != 0, res.stdout
    line = [x for x in res.stdout.splitlines() if x.startswith(f"{f}: ")]
    assert len(line) == 1, res.stdout
    return line[0][len(f"{f}: ") :].split(" ")[0]


def inspect_error(tmp_path, data: bytes) -> str:
    """`hanota image inspect FILE`: exit 2 and one clear error line (no traceback)."""
    f = tmp_path / "in.zigbee"
    f.write_bytes(data)
    res = B.hanota("inspect", f, ok=False)
    assert res.returncode == 2 and res.stdout == "", res
    return res.stderr.strip()


def hub_refuses(tmp_path, record, files: list[bytes], match: str) -> None:
    """Hub submission refused as a whole; no transfer, inventory unchanged."""
    hub = Hub()
    pub = tmp_path / "trusted.pub.pem"  # the hub verifies submissions: it trusts the tests' key
    pub.write_bytes(keys.public_pem(U.mkey().public_key()))
    hub.add_anchor(pub)
    hub.enrol(record)
    before = hub.inventory()
    paths_ = []
    for i, data in enumerate(files):
        p = tmp_path / f"sub{i}.zigbee"
        p.write_bytes(data)
        paths_.append(p)
    with pytest.raises(HubError, match=match):
        hub.submit("supplier-a", [record["eui64"]], paths_)
    assert hub.state.active(record["eui64"]) is None
    assert hub.inventory() == before and not hub.state.transfers


def device_refuses(tmp_path, data: bytes, status: int = INVALID):
    """The agent (fake board, CH double) ends the file with `status`; nothing written."""
    port, dbl = B.board(tmp_path, [data])
    return B.refused_cleanly(port, dbl, status)


def device_refuses_after_streaming(tmp_path, data: bytes) -> None:
    """INVALID_IMAGE, progress and agent state unchanged, and no sector written (the
    agent refuses at the header, before the first write: test below)."""
    port, dbl = B.board(tmp_path, [data])
    snapshot = (port.store.get("progress.json"), port.store.get("agent.json"))
    H.run(port, lambda a: B.ends(dbl) and a.client.st == 0)
    assert B.ends(dbl) == [INVALID]
    assert (port.store.get("progress.json"), port.store.get("agent.json")) == snapshot
    written = {op[1] for op in port.oplog if op[0] == "write"}
    for off in written:
        buf = bytearray(4096)
        port.read(off, buf)
        assert buf == b"\xff" * 4096, off
    assert port.running_version() == U.V1 and not port.pending


def device_ignores_offer(tmp_path, files: list[bytes]) -> None:
    """The offer is not even fetched: no block asked, no flash or store operation."""
    port, dbl = B.board(tmp_path, files)
    H.run(port, lambda a: port.clock > 20_000)
    assert dbl.bytes == 0 and B.ends(dbl) == [] and port.ops == 0
    assert port.store.get("progress.json") is None and port.running_version() == U.V1


# --- the agent under MicroPython: every file-level defect in one run, then a good image --

MPY_CASES = [
    "wrong_magic",
    "header_version",
    "header_length",
    "size_mismatch",
    "truncated",
    "trailing_junk",
    "unknown_key",
    "tampered",
    "other_signature",
    "counter_lower",
]


def bad_files() -> dict[str, bytes]:
    f = good()
    other = U.images(fake_app(V2, 20_000, seed=7), V2)[0]
    return {
        "wrong_magic": B.patch(f, 0, "<I", 0x0BEEF11F),
        "header_version": B.patch(f, 4, "<H", 0x0200),
        "header_length": B.patch(f, 6, "<H", 61),
        "size_mismatch": B.patch(f, 52, "<I", len(f) + 4),
        "truncated": f[:-100],
        "trailing_junk": f + b"junk",
        "unknown_key": B.one(key=keys.generate())[0],
        "tampered": f[:5000] + bytes([f[5000] ^ 0x10]) + f[5001:],
        "other_signature": f[:156] + other[156:220] + f[220:],  # another image's signature
        "counter_lower": B.one(counter=4)[0],
    }


@pytest.fixture(scope="module")
def mpy_ends(tmp_path_factory):
    """End statuses the MicroPython agent sent, file by file, and a good image last."""
    files = bad_files()
    store = U.store(extra={"agent.json": {"sec_counter": 5}})
    last = B.one(counter=5)
    r = run_agent_mpy(tmp_path_factory.mktemp("mpy"), [files[k] for k in MPY_CASES] + last,
                      store, V2, heap="256k", measure=False)  # fmt: skip
    ends = [e[1] for e in r["events"] if e[0] == "end"]
    assert ends[-1] == zcl.SUCCESS and len(ends) == len(MPY_CASES) + 1, ends
    return dict(zip(MPY_CASES, ends, strict=False))


# --- a sim board (the MicroPython agent on the simulated flash) over its HAN pty ---------


class SimHan:
    """A started sim board whose HAN pty the test talks to as the CH would."""

    def __init__(self, d):
        imgs_ = Images(d / "keys")
        _ident, record = simboards.fresh(d / "b", "sim-ppmid", factory_version=U.V1,
                                         trust=[imgs_.pub_path], suppliers=["supplier-a"],
                                         seed=str(d))  # fmt: skip
        # the board holds a CH link key: commands from the CH are sealed in its session
        self.pads = link.pads(bytes.fromhex(record["link_key"]))
        self.nonce, self.counter = None, 0
        # no spontaneous re-queries during the test: every query is an answer to us
        cfg = {"agent_config.json": json.dumps({"retry_s": 3600}).encode()}
        simboards.write_store(d / "b", defs.load("sim-ppmid"), cfg)
        self.sim = SimBoard(d / "b").start()
        self.sim.wait_for("boot", timeout=30)
        self.fd = os.open(self.sim.han_path, os.O_RDWR | os.O_NOCTTY)
        self.dec = link.Decoder()
        assert self.wait(lambda f: f[1] == zcl.QUERY_NEXT_IMAGE_REQ, 30), "no boot query"
        time.sleep(0.5)

    def frames(self, timeout: float):
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            r, _, _ = select.select([self.fd], [], [], left)
            if r:
                self.dec.feed(os.read(self.fd, 4096))
                while (fr := self.dec.next()) is not None:
                    src, dst, _seq, payload = fr
                    cmd, zseq, _s2c, _mfr, body = zcl.decode_frame(payload)
                    if cmd == zcl.LINK_SESSION:  # a new session: its nonce, counters from 1
                        self.nonce, self.counter = bytes(body), 0
                    yield dst, cmd, zseq, body

    def frame(self, src: int, dst: int, seq: int, z: bytes) -> bytes:
        """A link frame carrying ZCL frame `z`, sealed as the CH seals commands."""
        if self.nonce is not None:
            self.counter += 1
            z = link.seal(self.pads, self.nonce, src, dst, self.counter, z)
        return link.encode(src, dst, seq, z)

    def wait(self, pred, timeout: float):
        for f in self.frames(timeout):
            if pred(f):
                return f
        return None

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def close(self):
        os.close(self.fd)
        self.sim.stop()


@pytest.fixture(scope="module")
def han(tmp_path_factory):
    if not (paths.FIRMWARE / "main.py").is_file():
        pytest.skip("the agent is not built")
    h = SimHan(tmp_path_factory.mktemp("simhan"))
    yield h
    h.close()


def notify_frame(han, src: int = 0, dst: int = 1, seq: int = 3) -> bytes:
    z = zcl.encode_frame(zcl.IMAGE_NOTIFY, seq, zcl.encode_image_notify(0, 100), True)
    return han.frame(src, dst, seq, z)


def is_query(f) -> bool:
    return f[1] == zcl.QUERY_NEXT_IMAGE_REQ


def answered_query(han, data: bytes, timeout: float = 1.5) -> bool:
    han.send(data)
    return han.wait(is_query, timeout) is not None


# --- the catalogue ------------------------------------------------------------------------


@pytest.mark.bad_input("wrong-magic")
def test_wrong_magic(tmp_path, dev, mpy_ends):
    bad = bad_files()["wrong_magic"]
    assert verify_code(tmp_path, bad) == "BAD_MAGIC"
    assert "BAD_MAGIC" in inspect_error(tmp_path, bad)
    hub_refuses(tmp_path, dev[1], [bad], "malformed OTA file: BAD_MAGIC")
    device_refuses(tmp_path, bad)
    assert mpy_ends["wrong_magic"] == INVALID


@pytest.mark.bad_input("header-version")
def test_wrong_header_version(tmp_path, dev, mpy_ends):
    bad = bad_files()["header_version"]
    assert verify_code(tmp_path, bad) == "BAD_HEADER_VERSION"
    assert "BAD_HEADER_VERSION" in inspect_error(tmp_path, bad)
    hub_refuses(tmp_path, dev[1], [bad], "BAD_HEADER_VERSION")
    device_refuses(tmp_path, bad)
    assert mpy_ends["header_version"] == INVALID


@pytest.mark.bad_input("header-length")
def test_wrong_header_length(tmp_path, dev, mpy_ends):
    bad = bad_files()["header_length"]
    assert verify_code(tmp_path, bad) == "BAD_HEADER_LENGTH"
    assert "BAD_HEADER_LENGTH" in inspect_error(tmp_path, bad)
    hub_refuses(tmp_path, dev[1], [bad], "BAD_HEADER_LENGTH")
    device_refuses(tmp_path, bad)
    assert mpy_ends["header_length"] == INVALID


@pytest.mark.bad_input("total-size")
def test_total_size_not_file_length(tmp_path, dev, mpy_ends):
    bad = bad_files()["size_mismatch"]
    assert verify_code(tmp_path, bad) == "SIZE_MISMATCH"
    hub_refuses(tmp_path, dev[1], [bad], "malformed OTA file: SIZE_MISMATCH")
    device_refuses(tmp_path, bad)
    assert mpy_ends["size_mismatch"] == INVALID


@pytest.mark.bad_input("truncated")
def test_truncated_file(tmp_path, dev, mpy_ends):
    bad = bad_files()["truncated"]
    assert verify_code(tmp_path, bad) == "TRUNCATED"
    assert verify_code(tmp_path, bad[:30]) == "TRUNCATED"  # not even a whole header
    hub_refuses(tmp_path, dev[1], [bad], r"header total size \d+ != file length")
    device_refuses_after_streaming(tmp_path, bad)
    assert mpy_ends["truncated"] == INVALID


@pytest.mark.parametrize(
    "case",
    [
        pytest.param("truncated", marks=pytest.mark.bad_input("truncated")),
        pytest.param("trailing_junk", marks=pytest.mark.bad_input("trailing-junk")),
    ],
)
def test_truncated_or_padded_file_is_refused_before_any_flash_write(tmp_path, case):
    device_refuses(tmp_path, bad_files()[case])


@pytest.mark.bad_input("trailing-junk")
def test_trailing_junk(tmp_path, dev, mpy_ends):
    bad = bad_files()["trailing_junk"]
    assert verify_code(tmp_path, bad) == "TRAILING_DATA"
    hub_refuses(tmp_path, dev[1], [bad], r"header total size \d+ != file length")
    device_refuses_after_streaming(tmp_path, bad)
    assert mpy_ends["trailing_junk"] == INVALID


@pytest.mark.bad_input("oversized-fragment")
def test_oversized_fragment_over_750kB(tmp_path):
    big = U.images(fake_app(V2, 760_000), V2, max_size=800_000)
    assert len(big) == 1 and len(big[0]) > 750_000
    assert verify_code(tmp_path, big[0]) == "TOO_LARGE"
    device_ignores_offer(tmp_path, big)  # offer size > 750,000: not fetched at all


@pytest.mark.bad_input("wrong-mfr-or-type")
def test_wrong_manufacturer_code_or_image_type(tmp_path, dev):
    f = good()
    assert verify_code(tmp_path, f, "--manufacturer", "0x4321") == "WRONG_MANUFACTURER"
    assert verify_code(tmp_path, f, "--image-type", "0x0083") == "WRONG_IMAGE_TYPE"
    hub_refuses(tmp_path, dev[1], B.one(mfr=0x4321), "image manufacturer 0x4321")


@pytest.mark.bad_input("hw-version")
def test_hardware_version_outside_min_max(tmp_path):
    assert verify_code(tmp_path, good(), "--hw-version", "0x0200") == "HW_MISMATCH"


@pytest.mark.bad_input("unknown-key")
def test_signature_by_an_unknown_key(tmp_path, mpy_ends):
    assert verify_code(tmp_path, bad_files()["unknown_key"]) == "UNKNOWN_KEY"
    assert mpy_ends["unknown_key"] == INVALID


@pytest.mark.bad_input("tampered-byte")
def test_tampered_byte_anywhere(tmp_path, mpy_ends):
    f = good()
    n = len(f)
    # header, header fields, manifest, its chain head, signature r and s, payload start
    # (chunk 0 and its link), middle, end
    for i, pos in enumerate([0, 5, 9, 12, 30, 53, 58, 61, 100, 140, 155, 156, 188, 219, 220,
                             1243, 1259, n // 2, n - 17, n - 1]):  # fmt: skip
        b = bytearray(f)
        b[pos] ^= 1 << (i % 8)
        assert verify_code(tmp_path, bytes(b)) != "OK", pos
    assert mpy_ends["tampered"] == INVALID


@pytest.mark.bad_input("signature-other-image")
def test_valid_signature_over_a_different_image(tmp_path, mpy_ends):
    assert verify_code(tmp_path, bad_files()["other_signature"]) == "INVALID_SIGNATURE"
    assert mpy_ends["other_signature"] == INVALID


@pytest.mark.bad_input("downgrade")
def test_downgrade_or_replayed_old_image(tmp_path):
    older = U.V1 - 1
    (tmp_path / "down").mkdir()
    device_ignores_offer(tmp_path / "down", U.images(fake_app(older, 20_000), older))
    (tmp_path / "manifest").mkdir()  # the CH offers V2 but the file inside says older
    port, dbl = B.board(tmp_path / "manifest", U.images(fake_app(older, 20_000), older))
    dbl.files[0].version = V2
    B.refused_cleanly(port, dbl)


@pytest.mark.bad_input("counter-lower")
def test_security_counter_lower_than_stored(mpy_ends):
    assert mpy_ends["counter_lower"] == INVALID  # stored 5, the file's 4


@pytest.mark.bad_input("fragment-other-image")
def test_fragment_from_another_image(tmp_path, dev):
    a = U.images(fake_app(V2, 100_000), V2, max_size=40_000)
    v3 = V2 + 1
    b = U.images(fake_app(v3, 100_000), v3, max_size=40_000)
    files = []
    for i, data in enumerate((a[0], b[1], a[2])):
        p = tmp_path / f"mix{i}.zigbee"
        p.write_bytes(data)
        files.append(p)
    pub = tmp_path / "pub.pem"
    pub.write_bytes(keys.public_pem(U.mkey().public_key()))
    res = B.hanota("verify", *files, "--pubkey", pub, ok=False)
    assert res.returncode != 0 and f"{files[1]}: BAD_FRAGMENT from another image" in res.stdout
    hub_refuses(tmp_path, dev[1], [a[0], b[1], a[2]], "not from the same image")


@pytest.mark.bad_input("fragment-other-image")
def test_fragment_from_another_build_of_the_same_version_at_the_hub(tmp_path, dev):
    a = U.images(fake_app(V2, 100_000, seed=1), V2, max_size=40_000)
    b = U.images(fake_app(V2, 100_000, seed=2), V2, max_size=40_000)
    why = "not from the same image as .*: firmware SHA-256 .*another build"
    hub_refuses(tmp_path, dev[1], [a[0], b[1], a[2]], why)


@pytest.mark.bad_input("duplicate-fragment")
def test_duplicate_or_overlapping_fragment(tmp_path, dev):
    fr = U.images(fake_app(V2, 100_000), V2, max_size=40_000)
    hub_refuses(tmp_path, dev[1], [fr[0], fr[0], fr[1], fr[2]], "do not form the set")
    paths_ = []
    for i, data in enumerate(fr + [fr[1]]):
        p = tmp_path / f"d{i}.zigbee"
        p.write_bytes(data)
        paths_.append(p)
    pub = tmp_path / "pub.pem"
    pub.write_bytes(keys.public_pem(U.mkey().public_key()))
    res = B.hanota("verify", *paths_, "--pubkey", pub, ok=False)
    assert res.returncode != 0 and "duplicate" in res.stdout


@pytest.mark.bad_input("offset-beyond-total")
def test_fragment_offset_beyond_total(tmp_path, dev):
    bad = B.manifest_edit(B.SMALL_FILE, 36, "<I", 4096)  # signed, offset past the end
    assert verify_code(tmp_path, bad, key=B.KEY) == "BAD_FRAGMENT"
    hub_refuses(tmp_path, dev[1], [bad], "BAD_FRAGMENT: offset beyond total")


def _wrong_offset_blocks(tmp_path) -> int:
    """Serve the file with an extra Image Block Response at offset+7 before each real
    answer; the update must still end with the right image (slot digest verified before
    SUCCESS), none of them used."""
    port, dbl = B.board(tmp_path, [good()])
    real, injected = dbl._blocks, [0]

    def mangled(offset, max_size, span):
        out = real(offset, max_size, span)
        f = dbl.current()
        if injected[0] < 20 and f is not None:
            p = zcl.encode_image_block_rsp(0, f.mfr, f.type, f.version, offset + 7, b"x" * 10)
            injected[0] += 1
            out = [(zcl.IMAGE_BLOCK_RSP, p, None)] + out
        return out

    dbl._blocks = mangled
    H.run(port, lambda a: port.running_version() == V2 and not a.state.get("alerts"))
    assert [e[1] for e in dbl.events if e[0] == "end"] == [zcl.SUCCESS]
    return injected[0]


@pytest.mark.bad_input("block-wrong-offset")
def test_block_at_wrong_offset(tmp_path):
    assert _wrong_offset_blocks(tmp_path) >= 5


@pytest.mark.bad_input("block-too-large")
def test_block_larger_than_asked(tmp_path):
    store = U.store(extra={"agent_config.json": {"max_block": 64}})
    port, dbl = B.board(tmp_path, [good()], store)
    asked = []
    real = dbl._blocks

    def bigger(offset, max_size, span):
        asked.append(max_size)
        out = real(offset, max_size, span)
        f = dbl.current()
        p = zcl.encode_image_block_rsp(0, f.mfr, f.type, f.version, offset,
                                       b"y" * (max_size + 1))  # fmt: skip
        return [(zcl.IMAGE_BLOCK_RSP, p, None)] + out

    dbl._blocks = bigger
    H.run(port, lambda a: port.running_version() == V2 and not a.state.get("alerts"))
    assert asked and max(asked) == 64  # every request got a 65-byte block first


@pytest.mark.bad_input("bad-crc")
def test_frames_with_bad_crc(han):
    ops = han.sim.ops
    good_ = notify_frame(han)
    bad = bytearray(good_)
    bad[-3] ^= 0x01  # a CRC byte (before the delimiter): COBS still valid, CRC wrong
    assert not answered_query(han, bytes(bad))
    assert answered_query(han, good_)  # the same frame intact is answered
    assert han.sim.ops == ops


@pytest.mark.bad_input("oversize-frame")
def test_oversize_frames(han):
    ops = han.sim.ops
    good_ = notify_frame(han)
    oversize = bytes(range(1, 250)) * 2 + good_  # 498 bytes before the delimiter
    assert not answered_query(han, oversize)
    assert answered_query(han, good_)
    assert han.sim.ops == ops


@pytest.mark.bad_input("unknown-command")
def test_unknown_commands(han):
    ops = han.sim.ops
    z = zcl.encode_frame(0x42, 77, b"\x01\x02", True)
    han.send(han.frame(0, 1, 9, z))
    f = han.wait(lambda f: f[1] == zcl.DEFAULT_RSP and f[2] == 77, 3)
    assert f is not None and zcl.decode_default_rsp(f[3]) == (0x42, zcl.UNSUP_CLUSTER_COMMAND)
    assert han.sim.ops == ops


@pytest.mark.bad_input("foreign-node")
def test_commands_from_a_node_other_than_the_bound_ch(han):
    """R4: the banned local/HHT path. A notify from 0x0042 gets NOT_AUTHORIZED and no
    query; the same notify from the CH (0x0000) gets a query."""
    ops = han.sim.ops
    han.send(notify_frame(han, src=0x0042, seq=55))
    got = list(han.frames(1.5))
    assert not [f for f in got if is_query(f)], got
    deny = [f for f in got if f[1] == zcl.DEFAULT_RSP]
    assert deny and deny[0][0] == 0x0042
    assert zcl.decode_default_rsp(deny[0][3]) == (zcl.IMAGE_NOTIFY, zcl.NOT_AUTHORIZED)
    assert answered_query(han, notify_frame(han, src=0))
    assert han.sim.ops == ops


# --- the table in docs/reliability.md against the marks and QUALITY.md --------------------

RELIABILITY = paths.ROOT / "docs" / "reliability.md"
TABLE_HEAD = "| item | id | interfaces | expected error / status | tests | result |"


def catalogue_table() -> list[dict]:
    """The rows of docs/reliability.md's bad-input table: item (QUALITY.md's words), id,
    and the tests named in its tests column (`tests/FILE::TEST`, `...::TEST[case]`)."""
    lines = RELIABILITY.read_text().splitlines()
    assert lines.count(TABLE_HEAD) == 1, f"{RELIABILITY}: no table headed {TABLE_HEAD}"
    rows = []
    for line in lines[lines.index(TABLE_HEAD) + 2 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        assert len(cells) == 6, line
        item, id_, _, _, tests, _ = cells
        assert id_.startswith("`") and id_.endswith("`") and id_.count("`") == 2, line
        rows.append({"item": item, "id": id_.strip("`"), "tests": tests.split("`")[1::2]})
    return rows


def test_the_table_names_every_test_marked_for_each_item():
    """Each item id of the table has at least one test, the tests the table names for an
    item are exactly those marked `@pytest.mark.bad_input(id)` across tests/, and no mark
    names an id the table does not have."""
    rows = catalogue_table()
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), ids
    named = {r["id"]: set(r["tests"]) for r in rows}
    marked = B.bad_input_marks(paths.ROOT / "tests")
    assert not [i for i in ids if not named[i]], "items naming no test"
    assert not set(marked) - set(ids), f"marks naming no item: {set(marked) - set(ids)}"
    for i in ids:
        assert named[i] == marked.get(i, set()), (
            i,
            f"named, not marked: {sorted(named[i] - marked.get(i, set()))}",
            f"marked, not named: {sorted(marked.get(i, set()) - named[i])}",
        )


def test_the_table_lists_quality_md_s_bad_input_items():
    doc = paths.ROOT.parent / "shared" / "design" / "QUALITY.md"
    if not doc.is_file():
        pytest.skip("../shared/design/QUALITY.md is not beside this checkout")
    text = doc.read_text()
    para = text.split("## Bad input", 1)[1].split("\n", 1)[1].split("Parsers are fuzzed")[0]
    items = [i.strip().rstrip(".") for i in para.replace("\n", " ").split(",")]
    assert len(items) == 26, items
    assert [r["item"] for r in catalogue_table()] == items
