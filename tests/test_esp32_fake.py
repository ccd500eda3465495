"""The ESP32 fake (tests/esp32_fake.py) against the facts of shared/design/ESP32.md, one test
per fact of its sections "esp32.Partition" and "The bootloader", and against Espressif's own
esptool 5.6.0 `image-info` on good and corrupted app images (CPython)."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hanota.board import defs
from hanota.paths import FIRMWARE
from test_esp32_image import esp_image

sys.path.insert(0, str(FIRMWARE))
import esp32_fake as f  # noqa: E402
import esp_image_verify as iv  # noqa: E402
from ports import esp32_image as ei  # noqa: E402
from ports import otadata as od  # noqa: E402

BOARD = defs.load("ihd-esp32")
V1 = esp_image(version=b"")
V2 = esp_image(version=b"", body=9000)
OTADATA = 0xD000


@pytest.fixture
def esp32():
    """A fake ESP32 running V1 from ota_0 after its first boot; `import esp32` is the fake."""
    saved = {m: sys.modules.get(m) for m in ("esp32", "machine")}
    f.install(BOARD)
    f.flash_app("ota_0", V1)
    f.power_on()
    yield sys.modules["esp32"]
    for m, mod in saved.items():
        if mod is None:
            sys.modules.pop(m, None)
        else:
            sys.modules[m] = mod


def stage(esp32, data: bytes):
    part = esp32.Partition(esp32.Partition.RUNNING).get_next_update()
    for b in range((len(data) + 4095) // 4096):
        part.ioctl(6, b)
    part.writeblocks(0, data, 0)
    return part


def with_hash(img: bytearray) -> bytes:
    """Recompute the appended SHA-256 after editing the image body."""
    return bytes(img[:-32]) + hashlib.sha256(bytes(img[:-32])).digest()


# -- esp32.Partition -------------------------------------------------------------------------
def test_block_size_is_4096(esp32):
    part = esp32.Partition("ota_1")
    assert part.ioctl(5, 0) == 4096 and part.ioctl(4, 0) == 0x180000 // 4096


def test_three_arg_writeblocks_erases_then_writes(esp32):
    part = esp32.Partition("ota_1")
    part.writeblocks(2, b"\x0f" * 4096)
    part.writeblocks(2, b"\xf0" * 4096)
    buf = bytearray(4096)
    part.readblocks(2, buf)
    assert buf == b"\xf0" * 4096


def test_four_arg_writeblocks_programs_without_erasing(esp32):
    part = esp32.Partition("ota_1")
    part.ioctl(6, 3)
    part.writeblocks(3, b"\x0f\x0f", 10)
    part.writeblocks(3, b"\xf3\xff", 10)  # NOR: bits only clear
    buf = bytearray(4)
    part.readblocks(3, buf, 9)
    assert buf == b"\xff\x03\x0f\xff"


def test_ioctl_6_erases_one_block(esp32):
    part = esp32.Partition("ota_1")
    part.writeblocks(4, b"\x00" * 8192)
    assert part.ioctl(6, 4) == 0
    buf = bytearray(8192)
    part.readblocks(4, buf)
    assert buf[:4096] == b"\xff" * 4096 and buf[4096:] == b"\x00" * 4096


def test_reads_of_erased_flash_give_ff(esp32):
    buf = bytearray(64)
    esp32.Partition("ota_1").readblocks(100, buf, 7)
    assert buf == b"\xff" * 64


def test_partition_errors_are_oserrors_with_the_esp_idf_codes(esp32):
    part = esp32.Partition("ota_1")
    with pytest.raises(OSError) as exc:
        part.readblocks(0x180000 // 4096, bytearray(1))  # one byte past the end
    assert exc.value.args == (-f.ESP_ERR_INVALID_SIZE, "ESP_ERR_INVALID_SIZE")
    with pytest.raises(OSError) as exc:
        part.writeblocks(0, b"\x00" * 100)  # a 3-arg write erases a range not whole sectors
    assert exc.value.args[0] == -f.ESP_ERR_INVALID_SIZE
    with pytest.raises(OSError) as exc:
        esp32.Partition("nope")
    assert exc.value.args[0] == 2  # MP_ENOENT


@pytest.mark.parametrize(
    "image,why",
    [
        (esp_image(version=b"", body=9000, checksum_xor=1), "checksum"),
        (esp_image(chip_id=9, version=b""), "chip id"),
        (esp_image(version=b"", max_rev=100), "chip revision"),  # v1.0 max, the chip is v3.1
        (V2[:-1] + bytes([V2[-1] ^ 1]), "hash"),
    ],
)
def test_set_boot_validates_the_image_and_raises_oserror_5379(esp32, image, why):
    part = stage(esp32, image)
    before = f.entries()
    with pytest.raises(OSError) as exc:
        part.set_boot()
    assert exc.value.args == (-5379, "ESP_ERR_OTA_VALIDATE_FAILED"), why
    assert f.entries() == before


def test_set_boot_refuses_a_segment_that_breaks_the_mmu_mapping(esp32):
    img = bytearray(V2)
    img[24:28] = (0x3F400040).to_bytes(4, "little")  # DROM address 0x40 into its page, data 0x20
    stage(esp32, with_hash(img))
    with pytest.raises(OSError) as exc:
        esp32.Partition("ota_1").set_boot()
    assert exc.value.args[0] == -5379


def test_image_check_app_accepts_can_still_be_refused_by_set_boot(esp32):
    img = esp_image(version=b"", body=9000, checksum_xor=1)
    part = stage(esp32, img)
    ei.check_app(lambda off, buf: part.readblocks(0, buf, off), len(img), "esp32", 0x180000)
    with pytest.raises(OSError):
        part.set_boot()


def test_mark_app_valid_marks_the_active_entry_whatever_its_state(esp32):
    for state in (od.NEW, od.UNDEFINED, od.PENDING_VERIFY):
        f._rewrite(1, 2, state)
        esp32.Partition.mark_app_valid_cancel_rollback()
        assert f.entries()[1] == (2, od.VALID, True), state
    # it does not look at what runs: ota_0 runs, the active entry names ota_1
    assert f.B.running[4] == "ota_0"


def test_mark_app_valid_without_a_valid_entry_fails_as_factory(esp32):
    f.flash_erase(OTADATA, 0x2000)
    with pytest.raises(OSError) as exc:
        esp32.Partition.mark_app_valid_cancel_rollback()
    assert exc.value.args == (1, "ESP_FAIL")


def test_mark_app_valid_after_arming_disarms_rollback(esp32):
    stage(esp32, V2).set_boot()
    esp32.Partition.mark_app_valid_cancel_rollback()
    assert f.entries()[1] == (2, od.VALID, True)
    assert f.boot() == 1 and not f.B.trial  # no trial: a bad V2 would never roll back


def test_rearming_the_active_slot_keeps_its_sequence_number(esp32):
    esp32.Partition("ota_0").set_boot()
    assert f.entries() == ((1, od.VALID, True), (1, od.NEW, True))
    # on a tie bootloader_common_select_otadata keeps otadata[0]: the re-armed NEW copy in
    # sector 1 is not the active entry, and the next boot is no trial
    assert f.boot() == 0 and not f.B.trial
    stage(esp32, V2).set_boot()
    assert f.entries() == ((1, od.VALID, True), (2, od.NEW, True))


# -- the bootloader ----------------------------------------------------------------------------
def test_otadata_entries_are_32_bytes_in_two_sectors_with_crc32_le_of_seq(esp32):
    stage(esp32, V2).set_boot()
    raw0 = f._raw(OTADATA, 32)
    raw1 = f._raw(OTADATA + 0x1000, 32)
    # seq u32, 20-byte label (left erased), state u32, crc u32 (seq 1: 0x4743989a as in
    # every fresh ESP-IDF otadata dump; seq 2: 0x55f63774)
    assert raw0 == (1).to_bytes(4, "little") + b"\xff" * 20 + bytes.fromhex("020000009a984347")
    assert raw1 == (2).to_bytes(4, "little") + b"\xff" * 20 + bytes.fromhex("000000007437f655")


def test_highest_valid_seq_wins_and_invalid_or_aborted_are_skipped(esp32):
    f.flash_app("ota_1", V2)
    f._rewrite(0, 3, od.VALID)
    f._rewrite(1, 4, od.VALID)
    assert f.boot() == 1
    f._rewrite(1, 4, od.INVALID)
    assert f.boot() == 0
    f._rewrite(1, 6, od.ABORTED)
    assert f.boot() == 0
    f._rewrite(1, 8, od.VALID)
    assert f.boot() == 1


def test_new_becomes_pending_verify_on_the_trial_boot_then_aborted(esp32):
    stage(esp32, V2).set_boot()
    assert f.boot() == 1 and f.B.trial
    assert f.entries()[1] == (2, od.PENDING_VERIFY, True)
    assert f.boot() == 0 and not f.B.trial
    assert f.entries() == ((1, od.VALID, True), (2, od.ABORTED, True))


def test_blank_otadata_boots_ota_0_and_writes_seq_1_valid():
    f.install(BOARD)
    f.flash_app("ota_0", V1)
    assert f._raw(OTADATA, 0x2000) == b"\xff" * 0x2000
    assert f.power_on() == 0
    assert f.entries() == ((1, od.VALID, True), (0xFFFFFFFF, 0xFFFFFFFF, False))


def test_selected_image_that_fails_to_load_boots_the_other_slot_otadata_untouched(esp32):
    stage(esp32, V2).set_boot()
    f.flash_erase(0x190000, 0x1000)  # the armed image loses its header after set_boot
    assert f.boot() == 0
    # the NEW entry was made PENDING_VERIFY before the load failed, as the real one does
    assert f.entries() == ((1, od.VALID, True), (2, od.PENDING_VERIFY, True))
    assert f.boot() == 0 and f.entries()[1] == (2, od.ABORTED, True)


def test_segment_loading_outside_ram_fails_at_load_not_at_set_boot(esp32):
    img = bytearray(V2)
    seg2 = 24 + 8 + 256 + 9000
    img[seg2 : seg2 + 4] = (0x40000000).to_bytes(4, "little")  # ROM, not IRAM
    part = stage(esp32, with_hash(img))
    part.set_boot()  # esp_image_verify in the app does not check load addresses
    assert f.boot() == 0


def test_rollback_needs_a_reset_and_only_a_watchdog_gives_one(esp32):
    stage(esp32, V2).set_boot()
    f.boot()
    f.advance(10 * 3600 * 1000)  # a hung trial app: nothing resets the board
    assert f.B.running[4] == "ota_1" and f.B.trial
    sys.modules["machine"].WDT(timeout=30000)
    with pytest.raises(f.Reset) as exc:
        f.advance(30000)
    assert exc.value.why == "wdt"
    assert f.boot() == 0


def test_wdt_cannot_be_stopped_only_given_a_new_timeout(esp32):
    machine = sys.modules["machine"]
    with pytest.raises(ValueError):
        machine.WDT(timeout=0)
    with pytest.raises(ValueError):
        machine.WDT(id=1, timeout=1000)
    wdt = machine.WDT(timeout=1000)
    f.advance(900)
    machine.WDT(timeout=5000)  # reconfigured and restarted
    f.advance(4900)
    wdt.feed()
    with pytest.raises(f.Reset):
        f.advance(5000)


# -- golden vectors: esptool image-info --------------------------------------------------------
def esptool_verdict(tmp_path: Path, data: bytes, chip: str = "esp32") -> tuple[bool, bool]:
    p = tmp_path / "img.bin"
    p.write_bytes(data)
    esptool = str(Path(sys.executable).parent / "esptool")
    res = subprocess.run(
        [esptool, "--chip", chip, "image-info", str(p)], capture_output=True, text=True
    )
    out = res.stdout
    checksum = re.search(r"Checksum: 0x[0-9a-f]+ \((valid|invalid)", out)
    digest = re.search(r"Validation hash: [0-9a-f]+ \((valid|invalid)", out)
    assert checksum and digest, out + res.stderr
    return checksum.group(1) == "valid", digest.group(1) == "valid"


def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x10]) + data[at + 1 :]


GOLDEN = {
    "good": V2,
    "body-byte": flip(V2, 0x300),
    "checksum-only": esp_image(version=b"", body=9000, checksum_xor=0x10),
    "hash-byte": flip(V2, len(V2) - 1),
    "body-byte-hash-recomputed": with_hash(bytearray(flip(V2, 0x2200))),
}


@pytest.mark.parametrize("name", list(GOLDEN))
def test_fake_and_check_app_agree_with_esptool_image_info(tmp_path, name):
    data = GOLDEN[name]
    checksum_ok, hash_ok = esptool_verdict(tmp_path, data)

    def read(off: int, n: int) -> bytes:
        return data[off : off + n].ljust(n, b"\xff")

    try:
        iv.verify(read, 0x190000, 0x180000, "esp32", 301)
        fake_ok = True
    except iv.ImageInvalid:
        fake_ok = False
    assert fake_ok == (checksum_ok and hash_ok), (name, checksum_ok, hash_ok)
    try:
        ei.check_app(lambda off, buf: buf.__setitem__(slice(None), read(off, len(buf))),
                     len(data), "esp32", 0x180000)  # fmt: skip
        app_ok = True
    except ei.EspImageError:
        app_ok = False
    # check_app checks the appended SHA-256, not the XOR checksum (set_boot catches that)
    assert app_ok == hash_ok, (name, hash_ok)
