"""`hanota board provision --store-dir`: identity.json/trust.json in the store format of
docs/architecture.md, and a device record whose public key matches the stored private key."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

HANOTA = str(Path(sys.executable).parent / "hanota")


def hanota(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([HANOTA, *args], capture_output=True, text=True, cwd="/")


@pytest.fixture
def anchors(tmp_path: Path) -> list[tuple[Path, bytes]]:
    out = []
    for i, fmt in enumerate(("public", "private")):
        key = ec.generate_private_key(ec.SECP256R1())
        nums = key.public_key().public_numbers()
        raw = nums.x.to_bytes(32, "big") + nums.y.to_bytes(32, "big")
        if fmt == "public":
            pem = key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        else:
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        path = tmp_path / f"mfr{i}.pem"
        path.write_bytes(pem)
        out.append((path, raw))
    return out


def provision(tmp_path: Path, anchors, *extra: str) -> tuple[dict, dict, dict, dict]:
    store, record = tmp_path / "store", tmp_path / "rec.json"
    args = ["board", "provision", "--board", "sim-ppmid", "--store-dir", str(store),
            "--record", str(record), "--json", *extra]  # fmt: skip
    for path, _ in anchors:
        args += ["--trust", str(path)]
    res = hanota(*args)
    assert res.returncode == 0, res.stderr
    ident = json.loads((store / "identity.json").read_text())
    trust = json.loads((store / "trust.json").read_text())
    return ident, trust, json.loads(record.read_text()), json.loads(res.stdout)


def test_store_files_have_the_contract_keys_and_types(tmp_path, anchors):
    ident, trust, _, _ = provision(tmp_path, anchors, "--eui64", "00:12:4B:00:A1:B2:C3:D4",
                                   "--short-addr", "0x1A2B", "--supplier", "supplier-a",
                                   "--supplier", "supplier-b")  # fmt: skip
    assert set(ident) == {"eui64", "short_addr", "ch_addr", "suppliers", "device_key", "board",
                          "link_key"}  # fmt: skip
    assert len(bytes.fromhex(ident["link_key"])) == 16
    assert ident["eui64"] == "00124b00a1b2c3d4"
    assert ident["short_addr"] == 0x1A2B and ident["ch_addr"] == 0
    assert ident["suppliers"] == ["supplier-a", "supplier-b"]
    assert ident["board"] == "sim-ppmid"
    assert len(ident["device_key"]) == 64 and int(ident["device_key"], 16) > 0
    for _path, raw in anchors:
        kid = hashlib.sha256(raw).digest()[:4].hex()
        assert trust[kid] == raw.hex()
    assert len(trust) == 2


def test_record_public_key_matches_the_device_key_and_holds_no_secret(tmp_path, anchors):
    ident, trust, record, summary = provision(tmp_path, anchors)
    priv = ec.derive_private_key(int(ident["device_key"], 16), ec.SECP256R1())
    nums = priv.public_key().public_numbers()
    pub = nums.x.to_bytes(32, "big") + nums.y.to_bytes(32, "big")
    assert record["public_key"] == pub.hex()
    assert record["key_id"] == hashlib.sha256(pub).digest()[:4].hex()
    assert record["eui64"] == ident["eui64"] and record["board"] == "sim-ppmid"
    assert record["suppliers"] == ident["suppliers"] and record["short_addr"] == 1
    assert record["image_type"] == 0x0084 and record["manufacturer_code"] == 0x1234
    assert sorted(record["trust"]) == sorted(trust)
    assert ident["device_key"] not in json.dumps(record) + json.dumps(summary)
    # the CH link key is shared with the hub through the record, never printed
    assert record["link_key"] == ident["link_key"] and ident["link_key"] not in json.dumps(summary)
    assert (Path(summary["record"]).stat().st_mode & 0o077) == 0
    assert summary["public_key"] == record["public_key"]


def test_device_public_key_agrees_with_the_boards_own_p256(tmp_path, anchors):
    p256 = pytest.importorskip("otaclient.p256")
    ident, _, record, _ = provision(tmp_path, anchors)
    assert p256.public_key(bytes.fromhex(ident["device_key"])).hex() == record["public_key"]


def test_seed_gives_a_reproducible_locally_administered_identity(tmp_path, anchors):
    a = provision(tmp_path / "a", anchors, "--seed", "bench-7")[0]
    b = provision(tmp_path / "b", anchors, "--seed", "bench-7")[0]
    c = provision(tmp_path / "c", anchors)[0]
    assert a == b and a["device_key"] != c["device_key"]
    assert int(a["eui64"][:2], 16) & 0x03 == 0x02  # locally administered, unicast


@pytest.mark.parametrize(
    "extra,needle",
    [
        (["--eui64", "1234"], "16 hex digits"),
        (["--short-addr", "0xFFF8"], "outside 0x0001..0xFFF7"),
        (["--supplier", "a-supplier-id-that-is-too-long"], "1..16"),
        (["--trust", "/nonexistent.pem"], "trust anchor /nonexistent.pem"),
    ],
)
def test_bad_provisioning_input_is_refused_and_writes_nothing(tmp_path, extra, needle):
    store = tmp_path / "store"
    res = hanota("board", "provision", "--board", "sim-ppmid", "--store-dir", str(store), *extra)
    assert res.returncode == 2 and needle in res.stderr, res.stderr
    assert not store.exists()


def test_provision_needs_a_target():
    res = hanota("board", "provision", "--board", "sim-ppmid")
    assert res.returncode == 2 and "--store-dir" in res.stderr


def test_provision_over_a_port_dry_run_reads_the_efuses_first(tmp_path, anchors):
    res = hanota("board", "provision", "--board", "ihd-esp32", "--port", "/dev/ttyUSB0",
                 "--dry-run", "--trust", str(anchors[0][0]))  # fmt: skip
    assert res.returncode == 0, res.stderr
    efuse, store = res.stdout.splitlines()[:2]
    assert efuse.split()[0].endswith("espefuse")
    assert " --port /dev/ttyUSB0 --after hard-reset summary FLASH_CRYPT_CNT --format json " in efuse
    assert "mpremote connect /dev/ttyUSB0 exec" in store and store.endswith(":/data/")


def test_provision_of_a_sim_board_reads_no_efuses(tmp_path, anchors):
    res = hanota("board", "provision", "--board", "sim-ppmid", "--sim", str(tmp_path / "sim"),
                 "--dry-run", "--trust", str(anchors[0][0]))  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "espefuse" not in res.stdout and "mpremote" in res.stdout
