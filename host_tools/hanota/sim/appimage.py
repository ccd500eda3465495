"""The sim board's app format: a 64-byte header and a ROMFS tree, mapped in place at boot.

Header (little-endian): magic "HSAP", format u16 = 2, header length u16 = 64, version u32,
tree length u32, SHA-256 of the tree, manufacturer code u16, image type u16, 12 reserved.
Tree: a MicroPython ROMFS image (hanota.sim.romfs), which the runner maps read-only into
MicroPython and mounts at /rom, so modules execute in place (format 1, a packed list of
files unpacked to disk, loaded every module into the heap). Modules are shipped
precompiled (.mpy, see hanota.mpycross); main.py stays source.
"""

from __future__ import annotations

import hashlib
import random
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import mpycross
from ..output import CommandError
from . import romfs

MAGIC = b"HSAP"
FORMAT = 2
HEADER = struct.Struct("<4sHHII32sHH12x")
HEADER_LEN = HEADER.size  # 64
PAD_PATH = "assets/pad.bin"
_SKIP_DIRS = {"__pycache__", ".git", ".pytest_cache"}
_SKIP_SUFFIXES = (".pyc", ".pyo", ".swp")


class AppError(CommandError):
    """An app image that cannot be built, does not fit, or does not verify."""


@dataclass(frozen=True)
class AppHeader:
    version: int
    tree_len: int
    sha256: bytes
    manufacturer_code: int
    image_type: int

    @property
    def total(self) -> int:
        return HEADER_LEN + self.tree_len


def parse_header(raw: bytes) -> AppHeader:
    """Decode the header; AppError when it is not a sim app."""
    if len(raw) < HEADER_LEN:
        raise AppError("not a sim app: shorter than its 64-byte header")
    magic, fmt, hlen, version, tree_len, digest, mfr, typ = HEADER.unpack_from(raw)
    if magic != MAGIC or fmt != FORMAT or hlen != HEADER_LEN:
        raise AppError(f"not a sim app: magic {magic!r} format {fmt} header length {hlen}")
    return AppHeader(version, tree_len, digest, mfr, typ)


def pack_tree(files: list[tuple[str, bytes]]) -> bytes:
    return romfs.build(files)


def unpack_tree(tree: bytes) -> list[tuple[str, bytes]]:
    """Entries of a tree; AppError on a truncated tree or an unsafe path."""
    try:
        return romfs.read(tree)
    except romfs.RomfsError as exc:
        raise AppError(f"app tree: {exc}") from None


def collect(source: Path) -> list[tuple[str, bytes]]:
    """The files of an app source tree (main.py at its top), sorted, caches skipped."""
    if not (source / "main.py").is_file():
        raise AppError(f"{source}: no main.py at the top of the app source tree")
    files = []
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source)
        if path.is_dir() or _SKIP_DIRS & set(rel.parts) or path.name.endswith(_SKIP_SUFFIXES):
            continue
        files.append((rel.as_posix(), path.read_bytes()))
    return files


def pad_data(n: int, seed: int = 0x48414E) -> bytes:
    """Deterministic filler that compresses like firmware (about half its size with deflate)."""
    rng = random.Random(seed)
    words = [rng.randbytes(rng.randint(2, 12)) for _ in range(64)]
    out = bytearray()
    while len(out) < n:
        if rng.random() < 0.45:
            out += rng.randbytes(rng.randint(4, 64))  # code-like, incompressible
        else:
            out += b"".join(rng.choice(words) for _ in range(rng.randint(2, 8)))
    return bytes(out[:n])


def build(files: list[tuple[str, bytes]], version: int, board: dict[str, Any],
          pad_to: int | None = None, precompile: bool = True) -> bytes:  # fmt: skip
    """Header + tree; modules precompiled to .mpy (as a board ships them; main.py stays
    source) unless precompile is False; with pad_to, a PAD_PATH asset makes the app
    exactly that size."""
    if precompile:
        files = mpycross.compile_tree(files)
    if pad_to is not None:
        files = files + [(PAD_PATH, pad_data(_pad_len(files, pad_to)))]
    tree = pack_tree(files)
    head = HEADER.pack(MAGIC, FORMAT, HEADER_LEN, version, len(tree), hashlib.sha256(tree).digest(),
                       board["manufacturer_code"], board["image_type"])  # fmt: skip
    return head + tree


def _pad_len(files: list[tuple[str, bytes]], pad_to: int) -> int:
    # ROMFS lengths are varuints: size the pad, then correct for its own length fields
    if pad_to % 2:
        raise AppError(f"--pad-to {pad_to} is odd: a ROMFS tree, so an app, has an even length")
    bare = HEADER_LEN + len(pack_tree(files + [(PAD_PATH, b"")]))
    if pad_to < bare:
        raise AppError(f"--pad-to {pad_to} is smaller than the app itself ({bare} bytes)")
    n = pad_to - bare
    for _ in range(4):  # a varuint grows by a byte at most per round: a fixed point soon
        short = pad_to - HEADER_LEN - len(pack_tree(files + [(PAD_PATH, bytes(n))]))
        if not short:
            break
        n += short
    return n


def check_fits(app: bytes | int, board: dict[str, Any]) -> None:
    size = app if isinstance(app, int) else len(app)
    slot = min(p["size"] for p in board["partitions"] if p["name"] in ("ota_0", "ota_1"))
    if size > slot:
        raise AppError(
            f"app is {size} bytes but board {board['name']}'s app slots hold {slot} bytes "
            f"({size - slot} too many); drop assets or lower --pad-to"
        )


def verify(raw: bytes) -> tuple[AppHeader, bytes]:
    """Header and tree of an app read from a slot; AppError unless the hash matches."""
    head = parse_header(raw)
    tree = raw[HEADER_LEN : head.total]
    if len(tree) != head.tree_len or hashlib.sha256(tree).digest() != head.sha256:
        raise AppError("app hash mismatch (corrupt or half-written slot)")
    return head, tree


def unpack_to(tree: bytes, dest: Path) -> None:
    """Write the tree's files under dest (the run directory)."""
    for name, data in unpack_tree(tree):
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
