"""`hanota image` end to end, through the installed command."""

import json
import os
import struct

import pytest
from badinput_util import hanota
from hanota.image import keys

TARGET = ["--manufacturer", "0x1234", "--image-type", "0x0084", "--version", "0x01020304"]
TARGET += ["--hw-min", "0x0100", "--hw-max", "0x01FF"]


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    d = tmp_path_factory.mktemp("kit")
    hanota("keygen", "-o", d / "k.pem")
    hanota("pubkey", d / "k.pem", "-o", d / "p.pem")
    hanota("keygen", "-o", d / "s.pem")
    hanota("pubkey", d / "s.pem", "-o", d / "sp.pem")
    hanota("keygen", "-o", d / "other.pem")
    hanota("pubkey", d / "other.pem", "-o", d / "otherp.pem")
    payload = os.urandom(2 * 1024 * 1024)
    (d / "fw.bin").write_bytes(payload)
    res = hanota("build", "--key", d / "k.pem", *TARGET, "-o", d / "out", d / "fw.bin")
    files = sorted((d / "out").iterdir())
    assert len(files) >= 3 and all(f.stat().st_size <= 750000 for f in files)
    assert all(f"wrote {f}" in res.stdout for f in files)
    return d, files


def test_two_megabytes_become_three_fragments_that_verify_as_one(kit):
    d, files = kit
    assert [f.name for f in files] == [f"1234-0084-01020304-{k}-of-3.zigbee" for k in (1, 2, 3)]
    res = hanota("verify", *files, "--pubkey", d / "p.pem")
    assert res.stdout.count(": OK") == 3


@pytest.mark.bad_input("unknown-key")
def test_missing_fragment_and_foreign_key_fail_verify(kit):
    d, files = kit
    res = hanota("verify", files[0], files[2], "--pubkey", d / "p.pem", ok=False)
    assert res.returncode != 0
    assert "1234-0084-01020304-2-of-3.zigbee: BAD_FRAGMENT missing fragment 2 of 3" in res.stdout
    res = hanota("verify", *files, "--pubkey", d / "otherp.pem", ok=False)
    assert res.returncode != 0 and res.stdout.count("UNKNOWN_KEY") == 3


@pytest.mark.bad_input("duplicate-fragment", "fragment-other-image")
def test_duplicate_and_foreign_fragments_fail_verify(kit, tmp_path):
    d, files = kit
    res = hanota("verify", *files, files[1], "--pubkey", d / "p.pem", ok=False)
    assert res.returncode != 0 and "duplicate" in res.stdout
    (tmp_path / "fw2.bin").write_bytes(os.urandom(100000))
    hanota("build", "--key", d / "k.pem", *TARGET, "-o", tmp_path, tmp_path / "fw2.bin")
    other = tmp_path / "1234-0084-01020304.zigbee"
    res = hanota("verify", *files, other, "--pubkey", d / "p.pem", ok=False)
    assert f"{other}: BAD_FRAGMENT from another image" in res.stdout


@pytest.mark.bad_input("tampered-byte")
def test_any_single_byte_flip_in_any_fragment_is_caught(kit, tmp_path):
    d, files = kit
    flipped = []
    for k, f in enumerate(files):
        data = f.read_bytes()
        n = len(data)
        for i, pos in enumerate(
            [0, 5, 9, 30, 53, 58, 61, 100, 155, 156, 219, 220, 1259, 1260, n // 2, n - 17, n - 1]
        ):
            b = bytearray(data)
            b[pos] ^= 1 << (i % 8)
            out = tmp_path / f"f{k}-{pos}.zigbee"
            out.write_bytes(b)
            flipped.append(out)
    res = hanota("verify", *flipped, "--pubkey", d / "p.pem", ok=False)
    lines = res.stdout.splitlines()
    assert res.returncode != 0 and len(lines) == len(flipped)
    assert not [line for line in lines if ": OK" in line]


def test_inspect_json_fields(kit):
    d, files = kit
    doc = json.loads(hanota("inspect", files[1], "--json").stdout)
    data = files[1].read_bytes()
    assert doc["manufacturer_code"] == 0x1234 and doc["image_type"] == 0x0084
    assert doc["file_version"] == 0x01020304 and doc["header_length"] == 60
    assert doc["total_image_size"] == len(data) and (doc["hw_min"], doc["hw_max"]) == (0x100, 0x1FF)
    assert (doc["fragment_index"], doc["fragment_count"]) == (1, 3)
    import hashlib

    assert doc["firmware_sha256"] == hashlib.sha256((d / "fw.bin").read_bytes()).hexdigest()
    pub = keys.raw_public(keys.load_public(d / "p.pem"))
    from otaclient import image

    assert doc["key_id"] == image.key_id(pub)
    assert doc["signed_range"] == [0, 156] and doc["signature"] == data[156:220].hex()
    assert doc["payload_range"] == [220, len(data)] and doc["supplier_signature"] is None
    assert doc["chain_head"] == hashlib.sha256(data[220 : 220 + 1040]).digest()[:16].hex()
    assert doc["chunks"] == -(-doc["fragment_length"] // 1024) and doc["format_version"] == 2
    assert doc["payload_length"] == doc["fragment_length"] + 16 * (doc["chunks"] - 1)
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    sig = bytes.fromhex(doc["signature"])
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    keys.load_public(d / "p.pem").verify(
        der, data[: doc["signed_range"][1]], ec.ECDSA(hashes.SHA256())
    )
    text = hanota("inspect", files[0]).stdout
    assert "manufacturer_code: 0x1234" in text and "fragment_count: 3" in text


def test_inspect_reads_standard_sub_element_files(tmp_path):
    body = struct.pack("<HI", 0x0000, 5) + b"hello" + struct.pack("<HI", 0xF000, 2) + b"hi"
    header = struct.pack(
        "<IHHHHHIH32sI", 0x0BEEF11E, 0x0100, 56, 0, 0x1234, 1, 7, 2, b"std", 56 + len(body)
    )
    (tmp_path / "std.ota").write_bytes(header + body)
    doc = json.loads(hanota("inspect", tmp_path / "std.ota", "--json").stdout)
    assert doc["format"] == "zigbee-sub-elements" and doc["hw_min"] is None
    assert [(e["tag"], e["length"]) for e in doc["sub_elements"]] == [(0, 5), (0xF000, 2)]
    assert "sub_element: tag 0xf000 length 2" in hanota("inspect", tmp_path / "std.ota").stdout


def test_compressed_supplier_build_verifies_with_supplier_key(kit, tmp_path):
    d, _ = kit
    (tmp_path / "fw.bin").write_bytes(bytes(range(256)) * 4000 + os.urandom(3000))
    args = ["--key", d / "k.pem", *TARGET, "--compress", "--supplier-key", d / "s.pem"]
    hanota("build", *args, "--max-size", "200000", "-o", tmp_path / "o", tmp_path / "fw.bin")
    files = sorted((tmp_path / "o").iterdir())
    hanota("verify", *files, "--pubkey", d / "p.pem", "--supplier-pubkey", d / "sp.pem")
    res = hanota(
        "verify", *files, "--pubkey", d / "p.pem", "--supplier-pubkey", d / "p.pem", ok=False
    )
    assert res.returncode != 0 and "INVALID_SIGNATURE" in res.stdout
    doc = json.loads(hanota("inspect", files[0], "--json").stdout)
    assert doc["compressed"] is True and len(doc["supplier_signature"]) == 128


@pytest.mark.bad_input(
    "wrong-magic", "total-size", "truncated", "trailing-junk", "wrong-mfr-or-type", "hw-version"
)
def test_verify_codes_for_bad_files(kit, tmp_path):
    d, files = kit
    good = files[2].read_bytes()
    bad = {
        "magic": (b"\x00" + good[1:], "BAD_MAGIC"),
        "trunc": (good[:-10], "TRUNCATED"),
        "junk": (good + b"junk", "TRAILING_DATA"),
        "size": (good[:52] + struct.pack("<I", len(good) + 4) + good[56:], "SIZE_MISMATCH"),
    }
    for name, (data, _) in bad.items():
        (tmp_path / name).write_bytes(data)
    res = hanota("verify", *(tmp_path / n for n in bad), "--pubkey", d / "p.pem", ok=False)
    for name, (_, code) in bad.items():
        assert f"{tmp_path / name}: {code}" in res.stdout
    res = hanota("verify", files[0], "--pubkey", d / "p.pem", "--hw-version", "0x0200", ok=False)
    assert "HW_MISMATCH" in res.stdout
    res = hanota("verify", files[0], "--pubkey", d / "p.pem", "--manufacturer", "0x1", ok=False)
    assert "WRONG_MANUFACTURER" in res.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--key", "{d}/nope.pem"], "no such file"),
        (["--key", "{d}/fw.bin"], "not a PEM private key"),
        (["--key", "{d}/p.pem"], "not a PEM private key"),
        (["--key", "{d}/rsa.pem"], "not a P-256"),
        (["--key", "{d}/k.pem", "--payload", "{d}/empty.bin"], "payload is empty"),
        (["--key", "{d}/k.pem", "--payload", "{d}/none.bin"], "no such file"),
        (["--key", "{d}/k.pem", "--hw-min", "0x300"], "hw-min"),
        (["--key", "{d}/k.pem", "--max-size", "300"], "max-size too small"),
        (["--key", "{d}/k.pem", "--version", "0x100000000"], "32 bits"),
        (["--key", "{d}/k.pem", "--version", "abc"], "not an integer"),
    ],
)
def test_build_refuses_bad_inputs_with_clear_errors(kit, args, message):
    d, _ = kit
    if not (d / "rsa.pem").exists():
        from cryptography.hazmat.primitives.asymmetric import rsa

        k = rsa.generate_private_key(public_exponent=65537, key_size=1024)
        from cryptography.hazmat.primitives import serialization

        pem = k.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        (d / "rsa.pem").write_bytes(pem)
        (d / "empty.bin").write_bytes(b"")
    opts = dict(zip(TARGET[::2], TARGET[1::2], strict=True))
    payload = f"{d}/fw.bin"
    it = iter(args)
    for flag in it:
        value = next(it).format(d=d)
        if flag == "--payload":
            payload = value
        else:
            opts[flag] = value
    flat = [x for kv in opts.items() for x in kv]
    res = hanota("build", *flat, "-o", d / "bad", payload, ok=False)
    assert res.returncode != 0 and message in res.stderr, res.stderr
    assert not (d / "bad").exists() or not list((d / "bad").iterdir())
