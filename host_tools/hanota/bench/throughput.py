"""Parser + hash throughput of `image.Verifier` and link frame decode, on the unix port.

No link, no flash: the cost of the per-byte layers the agent's ingest is built from.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from otaclient import link, zcl

from . import mpy, workload
from .results import Figure, Section

_VERIFY = """
import time, json
from otaclient import image
image.prepare()
PUB = bytes.fromhex({pub!r})
buf = bytearray(4096)
mv = memoryview(buf)
def sink(off, m):
    pass
for path in {paths!r}:
    v = image.Verifier(lambda k: PUB, sink)
    f = open(path, "rb")
    total = 0
    t0 = time.ticks_us()
    while True:
        n = f.readinto(buf)
        if not n:
            break
        for i in range(0, n, {block}):
            v.feed(mv[i:min(n, i + {block})])
        total += n
    t1 = time.ticks_us()
    m = v.finish()
    t2 = time.ticks_us()
    f.close()
    # m[14]: Manifest.fragment_length (a plain tuple on MicroPython: otaclient.record)
    print("BENCH " + json.dumps({{"file": path, "bytes": total, "fw": m[14],
        "feed_us": time.ticks_diff(t1, t0), "finish_us": time.ticks_diff(t2, t1)}}))
"""

_DECODE = """
import time, json
from otaclient import link
dec = link.Decoder()
buf = bytearray(512)
f = open({path!r}, "rb")
frames = total = 0
t0 = time.ticks_us()
while True:
    n = f.readinto(buf)
    if not n:
        break
    total += n
    dec.feed(buf, n)
    while dec.next() is not None:
        frames += 1
dt = time.ticks_diff(time.ticks_us(), t0)
print("BENCH " + json.dumps({{"bytes": total, "frames": frames, "us": dt}}))
"""


def block_stream(payload: bytes, block: int = 254) -> bytes:
    """The wire bytes of Image Block Responses carrying payload, as the CH sends them."""
    out = []
    for seq, off in enumerate(range(0, len(payload), block)):
        data = payload[off : off + block]
        p = zcl.encode_image_block_rsp(0, workload.MFR, workload.ITYPE, 0x01000001, off, data)
        z = zcl.encode_frame(zcl.IMAGE_BLOCK_RSP, seq & 0xFF, p, True)
        out.append(link.encode(0, 1, seq & 0xFF, z))
    return b"".join(out)


def measure(quick: bool = False) -> Section:
    size = 100_000 if quick else 700_000
    fw = workload.firmware(size)
    s = Section("parse", "Parser + hash and frame decode throughput (unix port)")
    with tempfile.TemporaryDirectory(prefix="hanota-bench-") as tmp:
        d = Path(tmp)
        unc = workload.write_files(d, workload.ota_files(fw), "unc")[0]
        comp = workload.write_files(d, workload.ota_files(fw, compress=True), "comp")[0]
        code = _VERIFY.format(pub=workload.pub().hex(), paths=[str(unc), str(comp)], block=254)
        r_unc, r_comp = mpy.run(code, heap="64k")
        wire = d / "wire.bin"
        wire.write_bytes(block_stream(fw[: size // 2]))
        dec = mpy.run(_DECODE.format(path=str(wire)), heap="64k")[0]
    mbs = lambda n, us: n / us if us else 0.0  # bytes/µs == MB/s  # noqa: E731
    s.method = (
        f"A {size:,}-byte firmware (the sim app's pad asset, realistic entropy) signed into one "
        f"OTA file, uncompressed ({r_unc['bytes']:,} bytes) and compressed "
        f"({r_comp['bytes']:,} bytes, 1 KB deflate pieces). Under `micropython -X heapsize=64k` "
        "after `image.prepare()`, the file is read in 4 KB `readinto` chunks and fed to "
        "`image.Verifier` in 254-byte slices (one Image Block's worth) with a no-op sink; "
        "time covers header/manifest parsing, SHA-256 and inflate, not the final signature "
        f"check (shown apart). Frame decode: {dec['frames']:,} Image Block Response frames "
        "(254-byte blocks, as the CH sends them) read in 512-byte chunks into "
        "`link.Decoder.feed(buf, n)` / `next()`, as the agent does. MB = 10^6 bytes."
    )
    s.add(
        Figure("verify_uncompressed_mbs", "Verifier, uncompressed: OTA file MB/s",
               mbs(r_unc["bytes"], r_unc["feed_us"]), "MB/s"),
        Figure("verify_compressed_mbs", "Verifier, compressed: OTA file MB/s",
               mbs(r_comp["bytes"], r_comp["feed_us"]), "MB/s"),
        Figure("verify_compressed_fw_mbs", "Verifier, compressed: firmware MB/s (after inflate)",
               mbs(r_comp["fw"], r_comp["feed_us"]), "MB/s"),
        Figure("finish_ms", "finish() (signature check) per file", r_unc["finish_us"] / 1000, "ms"),
        Figure("decode_mbs", "link frame decode: wire MB/s", mbs(dec["bytes"], dec["us"]), "MB/s"),
        Figure("compression_ratio", "firmware bytes / compressed file bytes",
               r_comp["fw"] / r_comp["bytes"], "×"),
    )  # fmt: skip
    s.data = {"uncompressed": r_unc, "compressed": r_comp, "decode": dec}
    return s
