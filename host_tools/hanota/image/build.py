"""Build signed OTA files from a firmware payload: chunks, hash chain, fragment plan, signatures."""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec
from otaclient import image

from ..output import CommandError
from .keys import raw_public, sign_raw


@dataclass(frozen=True)
class Target:
    """What the image is for: the OTA header fields the board checks."""

    manufacturer_code: int
    image_type: int
    file_version: int
    hw_min: int
    hw_max: int
    security_counter: int = 0

    def validate(self) -> None:
        for name in ("manufacturer_code", "image_type", "hw_min", "hw_max"):
            if not 0 <= getattr(self, name) <= 0xFFFF:
                raise CommandError(f"{name.replace('_', '-')} must fit in 16 bits")
        for name in ("file_version", "security_counter"):
            if not 0 <= getattr(self, name) <= 0xFFFFFFFF:
                raise CommandError(f"{name.replace('_', '-')} must fit in 32 bits")
        if self.hw_min > self.hw_max:
            raise CommandError(f"hw-min 0x{self.hw_min:04x} > hw-max 0x{self.hw_max:04x}")


def pieces(payload: bytes, compress: bool) -> list[bytes]:
    """The payload's chunk data: CHUNK_SIZE slices, or compressed pieces of PIECE_SIZE
    firmware bytes, each with a u16 length prefix."""
    if not compress:
        return [payload[i : i + image.CHUNK_SIZE] for i in range(0, len(payload), image.CHUNK_SIZE)]
    out = []
    for i in range(0, len(payload), image.PIECE_SIZE):
        sector = payload[i : i + image.PIECE_SIZE]
        # a fresh compressor per piece, ended by a full flush (not a final block): the
        # board's one decoder reads the pieces as one stream (otaclient.inflate)
        c = zlib.compressobj(9, zlib.DEFLATED, -image.WBITS)
        z = c.compress(sector) + c.flush(zlib.Z_FULL_FLUSH)
        out.append(len(z).to_bytes(2, "little") + z)
    return out


def sectors(parts: list[bytes], compress: bool) -> list[list[bytes]]:
    """Chunk data grouped per flash sector: fragments may only start on a sector boundary."""
    step = image.SECTOR_SIZE // (image.PIECE_SIZE if compress else image.CHUNK_SIZE)
    return [parts[i : i + step] for i in range(0, len(parts), step)]


def chain(parts: list[bytes]) -> tuple[bytes, bytes]:
    """(chain head, payload): each chunk's data followed by the link of the next chunk,
    built from the last one back; a link is SHA-256 of the whole next chunk (its data and
    its own link), truncated to LINK_SIZE bytes. The head goes in the signed manifest."""
    link, out = b"", []
    for data in reversed(parts):
        chunk = data + link
        out.append(chunk)
        link = hashlib.sha256(chunk).digest()[: image.LINK_SIZE]
    return link, b"".join(reversed(out))


def plan(sizes: list[int], budget: int) -> list[tuple[int, int]]:
    """Greedy split of consecutive pieces into fragments whose payload fits the budget."""
    groups: list[tuple[int, int]] = []
    start, used = 0, 0
    for i, size in enumerate(sizes):
        if size > budget:
            raise CommandError(f"max-size too small: a {size}-byte sector does not fit")
        if used + size > budget:
            groups.append((start, i))
            start, used = i, 0
        used += size
    groups.append((start, len(sizes)))
    return groups


def build(
    payload: bytes,
    target: Target,
    key: ec.EllipticCurvePrivateKey,
    *,
    compress: bool = False,
    max_size: int = image.MAX_FILE,
    supplier_key: ec.EllipticCurvePrivateKey | None = None,
    delta: bool = False,
) -> list[tuple[str, bytes]]:
    """The image files (name, bytes), one per fragment, in order. `delta`: the payload is a
    delta payload (hanota.image.delta.make), which must fit one file."""
    if not payload:
        raise CommandError("payload is empty")
    if len(payload) > 0xFFFFFFFF:
        raise CommandError("payload larger than 4 GiB")
    target.validate()
    overhead = image.SIGNED_END + image.SIG_SIZE
    overhead += image.TRAILER_SIZE if supplier_key else 0
    parts = sectors(pieces(payload, compress), compress)
    # a sector's payload bytes with a link after each chunk (the fragment's last has
    # none: the plan errs by LINK_SIZE bytes on the safe side)
    sizes = [sum(len(c) + image.LINK_SIZE for c in p) for p in parts]
    groups = plan(sizes, max_size - overhead)
    if len(groups) > 0xFFFF:
        raise CommandError(f"{len(groups)} fragments: more than 65535, raise --max-size")
    if delta and len(groups) > 1:
        raise CommandError(
            f"the delta payload ({len(payload)} bytes) does not fit one file of {max_size} "
            "bytes: a board applies a delta in one pass; send the full image instead"
        )
    digest = hashlib.sha256(payload).digest()
    kid = image.key_id(raw_public(key.public_key()))
    files = []
    for index, (a, b) in enumerate(groups):
        head, body = chain([c for p in parts[a:b] for c in p])
        offset = a * image.SECTOR_SIZE
        length = min(b * image.SECTOR_SIZE, len(payload)) - offset
        m = image.Manifest(
            image.MANIFEST_VERSION,
            target.manufacturer_code,
            target.image_type,
            target.hw_min,
            target.hw_max,
            target.file_version,
            target.security_counter,
            kid,
            len(body),
            digest,
            compress,
            index,
            len(groups),
            offset,
            length,
            len(payload),
            head,
            delta,
        )
        data = _sign_file(target, m, body, overhead + len(body), key, supplier_key)
        name = image.file_name(
            target.manufacturer_code, target.image_type, target.file_version, index, len(groups)
        )
        files.append((name, data))
    return files


def _sign_file(
    target: Target,
    m: image.Manifest,
    body: bytes,
    total: int,
    key: ec.EllipticCurvePrivateKey,
    supplier_key: ec.EllipticCurvePrivateKey | None,
) -> bytes:
    text = f"hanota {target.file_version:08x} {m.fragment_index + 1}/{m.fragment_count}"
    header = image.pack_header(
        target.manufacturer_code,
        target.image_type,
        target.file_version,
        target.hw_min,
        target.hw_max,
        total,
        text.encode(),
    )
    signed = header + image.pack_manifest(m)
    data = signed + sign_raw(key, signed)
    if supplier_key is not None:
        data += image.SUPPLIER_TAG + sign_raw(supplier_key, data)
    data += body
    assert len(data) == total
    return data


def write(outdir: Path, files: list[tuple[str, bytes]]) -> list[Path]:
    """Create outdir if needed and write the files into it."""
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, data in files:
            path = outdir / name
            path.write_bytes(data)
            paths.append(path)
    except OSError as exc:
        raise CommandError(f"cannot write into {outdir}: {exc.strerror}") from None
    return paths
