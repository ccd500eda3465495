"""Write the seed corpora fuzz/corpus/<target>/ from the real encoders (deterministic).

`python -m hanota.fuzz.seeds` rewrites them; tests check the committed ones are current.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from otaclient import link, zcl

from hanota.fuzz import deltafuzz, fixtures
from hanota.fuzz import scenario as sc
from hanota.paths import ROOT

CORPUS = ROOT / "fuzz" / "corpus"
EUI = bytes.fromhex("00124b00a1b2c3d4")
MFR, TYPE, VER = 0x121D, 0x0084, 0x01020304


def zcl_commands() -> list[tuple[tuple, bool]]:
    """One or more instances of every command (golden values of tests/test_zcl.py)."""
    z = zcl
    return [
        (z.ImageNotify(0, 100, None, None, None), True),
        (z.ImageNotify(3, 100, MFR, TYPE, VER), True),
        (z.QueryNextImageReq(0, MFR, TYPE, 0x01000000, None), False),
        (z.QueryNextImageReq(1, MFR, TYPE, 0x01000000, 0x1111), False),
        (z.QueryNextImageRsp(z.SUCCESS, MFR, TYPE, VER, 295), True),
        (z.QueryNextImageRsp(z.NO_IMAGE_AVAILABLE, None, None, None, None), True),
        (z.ImageBlockReq(0, MFR, TYPE, VER, 0x40, 48, None, None), False),
        (z.ImageBlockReq(3, MFR, TYPE, VER, 0x40, 48, EUI, 250), False),
        (z.ImagePageReq(1, MFR, TYPE, VER, 0, 255, 4096, 20, EUI), False),
        (z.ImageBlockRsp(0, MFR, TYPE, VER, 0x40, b"\xaa\xbb\xcc", None, None, None), True),
        (z.ImageBlockRsp(0x97, None, None, None, None, None, 0, 30, 250), True),
        (z.ImageBlockRsp(z.ABORT, None, None, None, None, None, None, None, None), True),
        (z.UpgradeEndReq(z.SUCCESS, MFR, TYPE, VER), False),
        (z.UpgradeEndRsp(MFR, TYPE, VER, 0, 0xFFFFFFFF), True),
        (z.DefaultRsp(z.IMAGE_BLOCK_RSP, z.MALFORMED_COMMAND), False),
        (z.DefaultRsp(z.QUERY_NEXT_IMAGE_REQ, z.SUCCESS), True),
        (z.DeviceAnnounce(EUI, 0x0200, VER, 1), False),
        (z.ActivationAlert(0x8F8B, "supplier-a", VER, 0, 1000, 7, bytes(range(64))), False),
        (z.AlertAck(7), True),
    ]


def zcl_seeds() -> list[bytes]:
    return [zcl.encode_command(obj, i, s2c) for i, (obj, s2c) in enumerate(zcl_commands())]


def link_seeds() -> list[bytes]:
    frames = [link.encode(0, 1, i, f) for i, f in enumerate(zcl_seeds())]
    out = frames[:4]
    out.append(link.encode(0, 1, 0, b""))
    out.append(link.encode(0xFFFF, 0xFFF7, 255, bytes(link.MAX_PAYLOAD)))  # all zeros
    out.append(link.encode(0, 1, 9, b"\x5a" * link.MAX_PAYLOAD))  # two 254-byte runs
    out.append(link.encode(0, 1, 10, b"\x01" * 253 + b"\x00"))
    out.append(b"".join(frames))  # a stream
    out.append(b"\x00\x00garbage" + frames[5] + frames[6][3:] + b"\x01\x02\x03\x00")
    out.append(frames[9][:-5] + b"\xff" + frames[9][-4:])  # bad CRC
    out.append(b"\x05" * 400 + b"\x00" + frames[2])  # oversize then a good frame
    return out


def image_seeds() -> list[bytes]:
    return [f.data for f in fixtures.parser_files()]


def reassembly_seeds() -> list[bytes]:
    n = [len(g) for g in fixtures.reassembly_sets()]
    a, c, b, z = (sum(n[:i]) for i in range(4))  # first file index of each set
    g, m, t, rb, raw, cancel = sc.GOOD, sc.MUTATE, sc.TRUNCATE, sc.REBOOT, sc.RAW, sc.CANCEL
    head = fixtures.reassembly_files()[a + 1].data[:600]
    return [
        sc.script(*[(g, a + i, 7) for i in range(n[0])]),  # in order
        sc.script(*[(g, a + i, 3) for i in reversed(range(n[0]))]),  # reversed
        sc.script((g, a, 1), (g, a, 2), (g, a + 1, 0), (rb,), (g, a + 1, 0)),  # duplicates
        sc.script((m, a + 1, 0x40, 0x00, 0x10, 5), (g, a + 1, 5)),  # tampered then good
        sc.script((t, a + 2, 0x00, 0x10, 0x02), (g, a + 2, 9)),  # abandoned mid-way
        sc.script((t, a + 2, 0x00, 0x10, 0x03), (g, a + 2, 9)),  # power lost mid-way
        sc.script((g, a, 0), (g, c + 1, 0), (g, c, 0)),  # same firmware, other cut
        sc.script((g, a, 0), (g, b, 0), (g, b + 1, 0)),  # newer image starts over
        sc.script((g, b, 0), (g, z, 0), (g, a, 0)),  # older images refused
        sc.script((g, a, 0), (cancel,), (g, a + 1, 0)),
        sc.script((raw, len(head) & 0xFF, len(head) >> 8), head, (4,)),  # a manifest to mutate
    ]


SEEDS = {
    "link_decoder": link_seeds,
    "zcl_decoder": zcl_seeds,
    "image_parser": image_seeds,
    "reassembly": reassembly_seeds,
    "delta_applier": deltafuzz.seeds,
}


def generate() -> dict[str, dict[str, bytes]]:
    """target -> {file name: bytes}; names are the content's SHA-1, as libFuzzer names them."""
    return {t: {hashlib.sha1(s).hexdigest(): s for s in make()} for t, make in SEEDS.items()}


def write(root: Path = CORPUS) -> int:
    """Replace each target's seed directory; returns the number of files written."""
    count = 0
    for target, seeds in generate().items():
        d = root / target
        d.mkdir(parents=True, exist_ok=True)
        for old in d.iterdir():
            if old.name not in seeds:
                old.unlink()
        for name, data in seeds.items():
            (d / name).write_bytes(data)
            count += 1
    return count


def main() -> int:
    n = write()
    print(f"seeds: {n} files under {CORPUS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
