"""hanota.link: profiles, pacing and latency through real ptys, seeded faults, transports."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable

import pytest
from hanota.link import emulator, profiles, pty, transport
from hanota.link.faults import FaultInjector, Faults
from hanota.link.profiles import LinkProfile
from otaclient import link

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


def run_link(
    profile: LinkProfile | str,
    body: Callable[[Streams, Streams, emulator.LinkEmulator], Awaitable[object]],
    faults: Faults | None = None,
) -> object:
    """Two raw ptys joined by a LinkEmulator; body gets the (reader, writer) of each end."""

    async def main() -> object:
        ma, path_a = pty.open_pty()
        mb, path_b = pty.open_pty()
        emu = emulator.LinkEmulator(profile, faults)
        relay = asyncio.create_task(emulator.relay_fds(ma, mb, emu))
        a = await transport.open_serial(path_a)
        b = await transport.open_serial(path_b)
        try:
            return await asyncio.wait_for(body(a, b, emu), 20)
        finally:
            emu.close()
            await relay
            a[1].close()
            b[1].close()
            pty.close_pty(ma)
            pty.close_pty(mb)

    return asyncio.run(main())


async def read_exactly(reader: asyncio.StreamReader, n: int) -> tuple[bytes, float]:
    """n bytes and the loop time the last one arrived."""
    data = await reader.readexactly(n)
    return data, asyncio.get_running_loop().time()


async def read_until_quiet(reader: asyncio.StreamReader, quiet_s: float = 0.3) -> bytes:
    out = b""
    while True:
        try:
            out += await asyncio.wait_for(reader.read(65536), quiet_s)
        except TimeoutError:
            return out


# --- profiles -------------------------------------------------------------------------------


def test_profiles_have_the_documented_rates():
    assert profiles.get("uart-115200").baud == 11520
    assert profiles.get("uart-921600").baud == 92160
    assert profiles.get("uart-115200").latency_s == 0.002
    han = profiles.get("han")
    assert (han.baud, han.latency_s, han.max_block, han.store_and_forward) == (
        31250,
        0.020,
        40,
        True,
    )
    assert profiles.get("direct").seconds(10**6) == 0
    assert profiles.names() == ["direct", "uart-115200", "uart-921600", "han"]


def test_unknown_profile_error_lists_the_names():
    with pytest.raises(ValueError, match="direct, uart-115200, uart-921600, han"):
        profiles.get("uart-9600")


# --- pacing and latency ---------------------------------------------------------------------


def test_pacing_at_115200_is_within_10_percent():
    data = os.urandom(2304)  # 0.2 s of line time at 11520 bytes/s

    async def body(a: Streams, b: Streams, emu: emulator.LinkEmulator) -> float:
        t0 = asyncio.get_running_loop().time()
        a[1].write(data)
        got, t1 = await read_exactly(b[0], len(data))
        assert got == data
        return t1 - t0

    elapsed = run_link("uart-115200", body)
    # never early; late bounds are generous (a loaded CI machine runs late, not early)
    assert 0.2 * 0.9 <= elapsed <= 0.2 * 1.5, elapsed


def test_full_duplex_directions_do_not_share_the_line():
    data = os.urandom(2304)

    async def body(a: Streams, b: Streams, emu: emulator.LinkEmulator) -> float:
        t0 = asyncio.get_running_loop().time()
        a[1].write(data)
        b[1].write(data)
        (_, t1), (_, t2) = await asyncio.gather(
            read_exactly(b[0], len(data)), read_exactly(a[0], len(data))
        )
        assert emu.stats()["a2b"]["bytes_out"] == emu.stats()["b2a"]["bytes_out"] == 2304
        return max(t1, t2) - t0

    elapsed = run_link("uart-115200", body)
    assert elapsed <= 0.2 * 1.5, elapsed  # a shared line would take 0.4 s


def test_latency_is_added_once_and_frames_pipeline():
    slow = LinkProfile("test-latency", 0, 0.15, 255)

    async def body(a: Streams, b: Streams, emu: emulator.LinkEmulator) -> list[float]:
        loop = asyncio.get_running_loop()
        sent = []
        for i in range(5):  # 5 frames 20 ms apart: all in flight together
            sent.append(loop.time())
            a[1].write(link.encode(1, 0, i, b"x" * 10))
            await asyncio.sleep(0.02)
        delays = []
        for i in range(5):
            frame, t = await read_exactly(b[0], len(link.encode(1, 0, i, b"x" * 10)))
            delays.append(t - sent[i])
        return delays

    delays = run_link(slow, body)
    assert all(0.14 <= d <= 0.3 for d in delays), delays  # not pipelined: up to 0.75 s


def test_han_profile_delivers_whole_frames():
    frame = link.encode(0, 1, 3, bytes(range(1, 51)))

    async def body(a: Streams, b: Streams, emu: emulator.LinkEmulator) -> tuple[bytes, float]:
        t0 = asyncio.get_running_loop().time()
        a[1].write(frame)
        first = await b[0].read(1000)  # one read: the whole frame at once
        return first, asyncio.get_running_loop().time() - t0

    first, elapsed = run_link("han", body)
    assert first == frame
    assert 0.020 + len(frame) / 31250 <= elapsed < 0.1, elapsed


# --- faults ---------------------------------------------------------------------------------


def _frames(n: int, size: int = 60) -> bytes:
    return b"".join(link.encode(1, 0, i & 0xFF, bytes([i & 0xFF | 1]) * size) for i in range(n))


def _inject(faults: Faults, stream: bytes, chunk: int) -> bytes:
    inj = FaultInjector(faults, "a2b")
    out = []
    for i in range(0, len(stream), chunk):
        out += inj.feed(stream[i : i + chunk])
    return b"".join(out + inj.flush())


ALL_FAULTS = Faults(seed=7, ber=1e-4, drop=0.05, dup=0.05, reorder=0.05, truncate=0.05)


def test_same_seed_same_corruption_whatever_the_chunking():
    stream = _frames(300)
    ref = _inject(ALL_FAULTS, stream, 4096)
    assert ref != stream
    for chunk in (1, 7, 61, 1000):
        assert _inject(ALL_FAULTS, stream, chunk) == ref, chunk
    other = Faults(**{**ALL_FAULTS.__dict__, "seed": 8})
    assert _inject(other, stream, 4096) != ref


def test_fault_rates_are_roughly_as_asked_and_the_decoder_copes():
    stream = _frames(2000)
    inj = FaultInjector(ALL_FAULTS, "a2b")
    out = b"".join(inj.feed(stream) + inj.flush())
    for name in ("dropped", "duplicated", "reordered", "truncated"):
        assert 50 <= inj.counts[name] <= 160, (name, inj.counts)
    expected_bits = len(out) * 8 * 1e-4
    assert 0.6 * expected_bits <= inj.counts["bit_errors"] <= 1.4 * expected_bits
    dec = link.Decoder()
    dec.feed(out)
    seqs = []
    while (f := dec.next()) is not None:
        seqs.append(f[2])
    assert 1500 <= len(seqs) <= 2100
    assert sum(dec.errors.values()) > 0


def test_no_faults_is_the_identity():
    stream = _frames(50) + b"garbage without delimiter"
    assert _inject(Faults(seed=1), stream, 13) == stream


def test_seeded_faults_through_real_ptys_are_reproducible():
    stream = _frames(120)
    faults = Faults(seed=3, ber=2e-4, drop=0.05, dup=0.05, reorder=0.05, truncate=0.05)

    async def body(a: Streams, b: Streams, emu: emulator.LinkEmulator) -> bytes:
        a[1].write(stream)
        return await read_until_quiet(b[0])

    first = run_link("uart-921600", body, faults)
    second = run_link("uart-921600", body, faults)
    assert first == second == _inject(faults, stream, 4096)
    assert first != stream


def test_cable_pull_loses_bytes_then_the_link_recovers():
    async def body(a: Streams, b: Streams, emu: emulator.LinkEmulator) -> tuple[bytes, dict]:
        a[1].write(_frames(20))  # about 1.4 kB: the pull starts at byte 500
        await asyncio.sleep(0.4)
        await read_until_quiet(b[0], 0.1)
        a[1].write(link.encode(1, 0, 99, b"after"))
        return await read_until_quiet(b[0], 0.2), emu.stats()

    after, stats = run_link("uart-115200", body, Faults(cable_pulls=((500, 0.05),)))
    assert after == link.encode(1, 0, 99, b"after")
    assert stats["a2b"]["bytes_lost"] > 0
    assert stats["a2b"]["bytes_out"] + stats["a2b"]["bytes_lost"] == stats["a2b"]["bytes_in"]


def test_pull_cable_method_and_eof_end_the_relay_cleanly():
    async def body(a: Streams, b: Streams, emu: emulator.LinkEmulator) -> bytes:
        emu.pull_cable(0.1)
        a[1].write(b"lost\x00")
        await asyncio.sleep(0.15)
        a[1].write(b"kept\x00")
        return await read_until_quiet(b[0], 0.2)

    assert run_link("direct", body) == b"kept\x00"


# --- transport ------------------------------------------------------------------------------


def test_open_serial_on_a_missing_port_says_which():
    with pytest.raises(ConnectionError, match="/dev/does-not-exist"):
        asyncio.run(transport.open_serial("/dev/does-not-exist"))


def test_pty_pair_is_raw_and_closes():
    master, path = pty.open_pty()
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        os.write(fd, b"\x00\x03\r\n\xff")
        assert os.read(master, 100) == b"\x00\x03\r\n\xff"  # no echo, no translation
        os.close(fd)
    finally:
        pty.close_pty(master)


def test_block_stream_at_115200_leaves_room_for_the_085_goal():
    """Back-to-back 255-byte block responses through uart-115200: the link-layer ceiling."""
    from otaclient import zcl

    frames = [
        link.encode(
            0,
            1,
            i,
            zcl.encode_frame(
                zcl.IMAGE_BLOCK_RSP,
                i,
                zcl.encode_image_block_rsp(0, 0x121D, 0x84, 1, i * 255, os.urandom(255)),
                True,
            ),
        )
        for i in range(24)
    ]
    wire = b"".join(frames)

    async def body(a: Streams, b: Streams, emu: emulator.LinkEmulator) -> float:
        t0 = asyncio.get_running_loop().time()
        b[1].write(wire)
        _, t1 = await read_exactly(a[0], len(wire))
        return t1 - t0

    elapsed = run_link("uart-115200", body)
    efficiency = 24 * 255 / elapsed / 11520
    print(f"uart-115200 block-stream efficiency {efficiency:.3f}")
    assert 0.85 <= efficiency <= 0.91, (efficiency, len(wire) / 24)
