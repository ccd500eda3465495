"""Link efficiency on the emulated UART (with and without compression, and `mpremote cp`
of the same payload over the same emulated link), and a 750 kB image over the HAN profile.
All through sim boards running the real agent, the hub and the link emulator."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from hanota import paths
from hanota.board import defs
from hanota.link import profiles

from . import console, simrun
from .results import Bar, Figure, Section

LINE = 11520  # bytes/s of 115200 8N1
HEAP = defs.load(simrun.BOARD)["heap"]  # the board's own (64k is not met yet: heap family)


def _work() -> Path:
    root = paths.BUILD / "bench"
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="work-", dir=root))


def _row(what: str, r: dict[str, Any], fw: int) -> list[str]:
    return [what, f"{fw:,}", f"{r['file_bytes']:,}", f"{r['seconds']:.2f}",
            f"{r['file_bytes'] / r['seconds'] / LINE:.3f}", f"{fw / r['seconds'] / LINE:.3f}",
            r["state"]]  # fmt: skip


async def _link(quick: bool, s: Section) -> None:
    bench = simrun.Bench(_work())
    uart = profiles.get("uart-115200")
    own = simrun.small_app(simrun.V2, 30_000) if quick else simrun.app(bench.work, simrun.V2)
    pad = simrun.small_app(simrun.V2, 30_000 if quick else 150_000)
    unc = bench.files(own, compress=False, name="own-unc")
    comp = bench.files(own, compress=True, name="own-comp")
    padc = bench.files(pad, compress=True, name="pad-comp")
    padu = bench.files(pad, compress=False, name="pad-unc")
    r_unc = await simrun.transfer(bench, uart, unc, heap=HEAP)
    r_comp = await simrun.transfer(bench, uart, comp, heap=HEAP)
    r_pad = await simrun.transfer(bench, uart, padc, heap=HEAP)
    r_padu = await simrun.transfer(bench, uart, padu, heap=HEAP)
    sim, _rec = bench.board(HEAP)
    sim.start()
    try:
        await asyncio.sleep(1.0)  # the agent up, as a user would find the board
        r_mp = await console.mpremote_cp(sim.console_path, uart, unc[0])
        r_mp2 = await console.mpremote_cp(sim.console_path, uart, padu[0], ":/data/bench2.bin")
    finally:
        await asyncio.to_thread(sim.stop)
    eff = r_unc["file_bytes"] / r_unc["seconds"] / LINE
    s.add(
        Figure("efficiency", "image bytes/s ÷ 11520, 254-byte blocks, uncompressed", eff, "",
               Bar(">=", 0.85)),
        Figure("compressed_fw", "firmware bytes/s ÷ 11520, compressed, the board's own app image",
               len(own) / r_comp["seconds"] / LINE, "", Bar(">=", 1.4)),
        Figure("compressed_pad", "firmware bytes/s ÷ 11520, compressed, synthetic pad-asset app",
               len(pad) / r_pad["seconds"] / LINE, ""),
    )  # fmt: skip
    several = Bar(">=", 3, "×", "'several times': our reading")
    for key, what, mp, u, c in (
        ("own", "own app (.mpy bytecode + main.py)", r_mp, r_unc, r_comp),
        ("pad", "pad-asset app (binary-like)", r_mp2, r_padu, r_pad),
    ):
        s.add(
            Figure(f"mpremote_{key}_ratio", f"mpremote cp ÷ OTA uncompressed, {what}",
                   mp["seconds"] / u["seconds"], "×", several),
            Figure(f"mpremote_{key}_ratio_comp", f"mpremote cp ÷ OTA compressed, {what}",
                   mp["seconds"] / c["seconds"], "×"),
        )  # fmt: skip
    s.tables.append((["payload", "bytes", "mpremote cp s", "bytes sent to the board", "OTA unc. s",
                      "OTA comp. s"],
                     [[w, f"{m['bytes']:,}", f"{m['seconds']:.2f}",
                       f"{m['link'].get('b2a', {}).get('bytes_out', 0):,}", f"{u['seconds']:.2f}",
                       f"{c['seconds']:.2f}"]
                      for w, m, u, c in (("own app OTA file", r_mp, r_unc, r_comp),
                                         ("pad-asset app OTA file", r_mp2, r_padu, r_pad))]))  # fmt: skip
    s.tables.append((["transfer", "firmware bytes", "OTA bytes", "seconds", "OTA bytes/s ÷ line",
                      "firmware bytes/s ÷ line", "hub state"],
                     [_row("own app, uncompressed", r_unc, len(own)),
                      _row("own app, compressed", r_comp, len(own)),
                      _row("pad-asset app, uncompressed", r_padu, len(pad)),
                      _row("pad-asset app, compressed", r_pad, len(pad))]))  # fmt: skip
    s.notes.append(
        f"`mpremote cp` exit statuses {r_mp['rc']}, {r_mp2['rc']}; its time includes entering "
        "the raw REPL (`connect ... resume`, no soft reset). It sends printable bytes almost as "
        "they are and escapes the rest, so the own app (.mpy: its names and strings are "
        "printable) is its better case, hence a lower ratio than the binary-like app. "
        "Compression ratio of the own app: "
        f"{len(own) / r_comp['file_bytes']:.2f}× (its modules ship as .mpy bytecode, which "
        "compresses far less than the Python source did: 2.39× before apps were "
        f"precompiled); pad-asset app: {len(pad) / r_pad['file_bytes']:.2f}× (the sim's synthetic "
        "firmware stand-in). Both in independent 1 KB deflate pieces (1 KB window): the "
        "price of a bounded inflater on a small heap, and why the 1.4 bar is missed."
    )
    if bench.note:
        s.notes.append(bench.note)
    s.data = {
        "uncompressed": r_unc,
        "compressed": r_comp,
        "pad_compressed": r_pad,
        "mpremote": r_mp,
    }


def measure(quick: bool = False) -> Section:
    s = Section("link", "Link efficiency on the emulated UART (115200 8N1, 2 ms)")
    s.method = (
        "A fresh provisioned sim board (`sim-ppmid`, the real agent under MicroPython at "
        f"`-X heapsize={HEAP}`) linked to the hub (in process, `RigHub`) through "
        "`LinkEmulator` with the `uart-115200` profile (11,520 bytes/s each way, full duplex, "
        "2 ms one-way latency, 254-byte blocks). One submission each; time runs from the first "
        "block request the hub serves to the device's Upgrade End Request for the last "
        "fragment (every byte delivered, verified and read back from flash). Payloads: the "
        "board's own app image (`hanota app build --board sim-ppmid`, this checkout's "
        "firmware/ tree), uncompressed and compressed, and a synthetic app (uncompressed and compressed) (one-line main.py "
        "+ the `--pad-to` asset, which is built to compress like firmware). Then a fresh "
        "board running the agent gets both uncompressed OTA files by `mpremote connect <pty> "
        "resume fs cp FILE :/data/...`, its console pty relayed through another "
        "`LinkEmulator` with the same profile."
    )
    asyncio.run(_link(quick, s))
    return s


async def _han(quick: bool, s: Section) -> None:
    bench = simrun.Bench(_work())
    han = profiles.get("han")
    size = 40_000 if quick else 749_700  # full: one whole <= 750,000-byte OTA file
    fw = simrun.small_app(simrun.V2, size)
    files = bench.files(fw, compress=False, name="han")
    r = await simrun.transfer(bench, han, files, heap=HEAP, timeout=900)
    rate = r["file_bytes"] / r["seconds"]
    target = 750_000
    s.add(
        Figure("han_rate", f"measured: {r['file_bytes']:,}-byte image over `han`", rate, "bytes/s"),
        Figure("han_750k_s", "750,000-byte image over `han`" + (" (extrapolated)" if quick else ""),
               target / rate, "s"),
        Figure("han_750k_min", "the same in minutes", target / rate / 60, "min"),
        Figure("han_line", "image bytes/s ÷ han line rate (31,250 B/s)", rate / han.baud, ""),
        Figure("han_vs_zigbee", "vs a ZigBee OTA client on a real HAN (~80 B/s, QUALITY.md)",
               rate / 80, "×"),
    )  # fmt: skip
    s.data = {"transfer": r}
    if bench.note:
        s.notes.append(bench.note)


def measure_han(quick: bool = False) -> Section:
    s = Section("han", "750 kB over the HAN-like profile (40-byte blocks, 20 ms)")
    s.method = (
        "As the link family, with the `han` profile: 250 kbit/s (31,250 bytes/s), store-and-"
        "forward frames, 20 ms one-way latency per frame, the hub's blocks capped at 40 bytes. "
        "The full run transfers one whole 749,904-byte OTA file (first block served to the "
        "Upgrade End Request) and scales the time to exactly 750,000 bytes; `--quick` measures "
        "a 40 kB image and extrapolates linearly from its rate (the transfer is pipelined with "
        "Image Page Requests, so the rate does not depend on the image size)."
    )
    asyncio.run(_han(quick, s))
    return s
