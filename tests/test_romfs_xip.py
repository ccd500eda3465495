"""The sim app format (a ROMFS tree) and execute-in-place: our writer/reader against the
real MicroPython `vfs.VfsRom`, and modules imported from the mapped slot costing no heap
for their bytecode."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from hanota import mpycross, paths
from hanota.sim import romfs

XIP = paths.ROOT / "host_tools" / "hanota" / "sim" / "xip.py"
FILES = [
    ("main.py", b"print('main')\n"),
    ("otaclient/a.txt", b"x" * 300),
    ("otaclient/deep/b.bin", bytes(range(256)) * 3),
    ("ports/c.txt", b""),
    ("z.txt", b"last"),
]


def test_build_and_read_round_trip():
    img = romfs.build(FILES)
    assert img.startswith(romfs.HEADER) and len(img) % 2 == 0
    assert sorted(romfs.read(img)) == sorted(FILES)


@pytest.mark.parametrize("bad", ["/abs.py", "a/../b.py", "a//b.py", ""])
def test_unsafe_paths_are_refused(bad):
    with pytest.raises(romfs.RomfsError, match="unsafe path"):
        romfs.build([(bad, b"")])


def test_truncated_or_foreign_images_are_refused():
    img = romfs.build(FILES)
    with pytest.raises(romfs.RomfsError, match="truncated"):
        romfs.read(img[: len(img) // 2])
    with pytest.raises(romfs.RomfsError, match="not a ROMFS"):
        romfs.read(b"HSAP" + img)


def _xip(tmp_path, files, code, heap="256k"):
    rom = tmp_path / "rom.img"
    rom.write_bytes(b"\xff" * 100 + romfs.build(files))  # mapped from an offset, as a slot
    script = tmp_path / "t.py"
    script.write_text(
        "import os, vfs, uctypes, sys\n"
        "a, n = [int(v) for v in os.getenv('HANOTA_ROM').split(':')]\n"
        "vfs.mount(vfs.VfsRom(uctypes.bytearray_at(a, n)), '/rom')\n" + code
    )
    res = subprocess.run(
        [sys.executable, str(XIP), str(rom), "100", str(rom.stat().st_size - 100),
         "-X", f"heapsize={heap}", str(script)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


@pytest.mark.micropython
def test_micropython_mounts_our_image_through_the_launcher(tmp_path):
    out = _xip(tmp_path, FILES, (
        "print(sorted(os.listdir('/rom')), sorted(os.listdir('/rom/otaclient/deep')))\n"
        "print(open('/rom/otaclient/deep/b.bin', 'rb').read() == bytes(range(256)) * 3)\n"
        "print(open('/rom/z.txt').read())\n"
    ))  # fmt: skip
    assert out.split("\n")[:3] == [
        "['main.py', 'otaclient', 'ports', 'z.txt'] ['b.bin']", "True", "last",
    ]  # fmt: skip


@pytest.mark.micropython
def test_modules_from_the_mapped_slot_keep_their_bytecode_out_of_the_heap(tmp_path):
    # four functions of ~3 KB of bytecode each: loaded from a directory, the heap holds
    # it all; from the mapped ROMFS it runs in place and only the function objects cost
    body = "".join(f"    a = (a * {i} + b) % 65521\n    b = (b ^ a) + {i}\n" for i in range(150))
    src = "".join(f"def f{i}(a, b):\n{body}    return a + b\n" for i in range(4)).encode()
    (mpy,) = mpycross.compile_tree([("big.py", src)])
    (tmp_path / "big.mpy").write_bytes(mpy[1])
    measure = (
        "import gc\ngc.collect()\nm0 = gc.mem_alloc()\nimport big\ngc.collect()\n"
        "print(big.__file__, gc.mem_alloc() - m0, big.f3(1, 2))\n"
    )
    from_rom = _xip(tmp_path, [("big.mpy", mpy[1])], "sys.path.insert(0, '/rom')\n" + measure)
    from_dir = _xip(
        tmp_path, [("x.txt", b"")], f"sys.path.insert(0, {str(tmp_path)!r})\n" + measure
    )
    rom_file, rom_cost, *_ = from_rom.split()
    dir_file, dir_cost, *_ = from_dir.split()
    assert rom_file == "/rom/big.mpy" and dir_file.endswith("/big.mpy")
    assert from_rom.split()[2:] == from_dir.split()[2:]  # same code, same result
    assert int(rom_cost) * 4 < int(dir_cost), (rom_cost, dir_cost)


def test_launcher_is_standalone():
    # started once per boot: it must not pull in hanota (import time, venv layout)
    text = XIP.read_text()
    imports = [ln for ln in text.splitlines() if ln.startswith(("import", "from"))]
    assert imports and not any("hanota" in ln for ln in imports)
    assert os.access(XIP, os.R_OK)
