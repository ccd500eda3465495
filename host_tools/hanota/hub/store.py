"""Image store and submission checks: OTA files parsed with otaclient.image, kept by SHA-256.

Checks R1 size, header, manifest, the full image's fragment set and each delta file
(one file per base version, making the same firmware), then, given the hub's manufacturer
trust anchors, every file whole (signature, payload, length) with the host verifier
(hanota.image.verify) and the assembled firmware's digest; a key-rotation (0xFFC0) file
against the rotation-authority keys only, and its records. Decides no per-device policy.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from otaclient import image
from otaclient.policy import KEYS_IMAGE_TYPE

MAX_FILE = image.MAX_FILE  # R1: 750,000 bytes per OTA file, header included


class SubmissionError(ValueError):
    """A refused submission; str() is the user-facing reason."""


@dataclass(frozen=True)
class ImageFile:
    """One OTA file of a submission (a whole image or one fragment)."""

    sha256: str
    name: str
    size: int
    mfr: int
    image_type: int
    version: int
    hw_min: int
    hw_max: int
    index: int
    count: int
    fragment_offset: int
    fragment_length: int
    total_length: int
    firmware_sha256: str = ""  # of the whole firmware (manifest); "" in logs from before
    key_id: str = ""  # the signing key's id, 8 hex digits; "" in logs from before
    # a delta file's descriptor (hanota.image.delta.Descriptor.json: base_version,
    # base_length, base_sha256, target_length, target_sha256, algorithm); None: full image
    delta: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def base_version(self) -> int | None:
        """The version a delta file applies to (None for a full image's file)."""
        return self.delta["base_version"] if self.delta is not None else None

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> ImageFile:
        return cls(**{k: doc[k] for k in cls.__dataclass_fields__ if k in doc})


def parse_file(name: str, data: bytes) -> ImageFile:
    """Header + manifest of one OTA file; SubmissionError with the file name on any fault."""
    if len(data) > MAX_FILE:
        raise SubmissionError(
            f"{name}: {len(data)} bytes is over the {MAX_FILE}-byte limit (R1): fragment it"
        )
    try:
        head = image.parse_header(data)
        man = image.parse_manifest(memoryview(data)[head.header_length :], head)
    except image.ImageError as exc:
        raise SubmissionError(f"{name}: malformed OTA file: {exc}") from None
    if head.total_size != len(data):
        raise SubmissionError(
            f"{name}: header total size {head.total_size} != file length {len(data)}"
        )
    delta = _descriptor(name, data) if man.delta else None
    return ImageFile(
        sha256=hashlib.sha256(data).hexdigest(),
        name=name,
        size=len(data),
        mfr=man.manufacturer_code,
        image_type=man.image_type,
        version=man.file_version,
        hw_min=man.hw_min,
        hw_max=man.hw_max,
        index=man.fragment_index,
        count=man.fragment_count,
        fragment_offset=man.fragment_offset,
        fragment_length=man.fragment_length,
        total_length=man.total_length,
        firmware_sha256=bytes(man.firmware_sha256).hex(),
        key_id=f"{man.key_id:08x}",
        delta=delta,
    )


def _descriptor(name: str, data: bytes) -> dict[str, Any]:
    """A delta file's descriptor as `image inspect` reads it (from the first chunk, before
    the signature is checked; verify_set checks it against the authenticated bytes)."""
    from hanota.image import inspect

    try:
        desc = inspect.describe(data)["delta"]
    except image.ImageError as exc:
        raise SubmissionError(f"{name}: malformed OTA file: {exc}") from None
    if desc is None or "error" in desc:
        why = desc["error"] if desc else "no descriptor"
        raise SubmissionError(f"{name}: delta file without a readable descriptor: {why}")
    return desc


def verify_set(named: list[tuple[str, bytes]], anchors: dict[int, bytes],
               rotation: bool = False, deltas: list[dict[str, Any] | None] | None = None,
               ) -> None:  # fmt: skip
    """Each file verified whole against `anchors` (key id -> X||Y): signature over every
    byte it signs, payload digest, length; then the full image's fragments assembled
    against the manifest's firmware SHA-256, and each delta file (`deltas`: per file, the
    descriptor parse_file read, None for a full image's file) alone, its authenticated descriptor the one read. With
    `rotation`, `anchors` are the rotation authority's and the one file's payload must be
    well-formed key records. SubmissionError naming the file and the failure."""
    from hanota.image import verify

    if not anchors:
        raise SubmissionError(_NO_KEYS[rotation])
    results = []
    for name, data in named:
        res = verify.verify_file(name, data, anchors)
        if res.code:
            why = _VERIFY_HINTS[rotation].get(res.code, "")
            raise SubmissionError(f"{name}: {res.code} {res.detail}".rstrip() + why)
        results.append(res)
    deltas = deltas or [None] * len(results)
    full = [r for r, d in zip(results, deltas, strict=True) if d is None]
    problems = verify.check_set(full) if full else []
    for r, d in zip(results, deltas, strict=True):
        if d is not None:
            problems += verify.check_set([r]) or _descriptor_bound(r, d)
    if problems:
        raise SubmissionError("; ".join(problems))
    if rotation:
        from hanota.image import rotation as rot

        try:
            rot.parse(b"".join(part for _off, part in results[0].parts))
        except ValueError as exc:
            raise SubmissionError(f"{named[0][0]}: key-rotation payload: {exc}") from None


def _descriptor_bound(res: Any, read: dict[str, Any]) -> list[str]:
    """[] when the verified patch's descriptor is the one read before verification."""
    from hanota.image import delta

    patch = b"".join(part for _off, part in res.parts)
    try:
        got = delta.parse_descriptor(patch).json()
    except delta.DeltaError as exc:
        return [f"{res.name}: {exc}"]
    return [] if got == read else [f"{res.name}: the delta descriptor is not the signed one"]


_NO_KEYS = {
    False: "this hub has no manufacturer trust anchor to check images against: add one "
    "(hanota hub trust PUB.pem)",
    True: "this hub has no rotation authority to check key-rotation (0xFFC0) images "
    "against: add one (hanota hub trust --authority PUB.pem)",
}
_BAD_SIG = " (the signature does not cover these bytes: forged or damaged)"
_VERIFY_HINTS = {
    False: {"UNKNOWN_KEY": " (not signed by a manufacturer key this hub trusts)",
            "INVALID_SIGNATURE": _BAD_SIG},
    True: {"UNKNOWN_KEY": " (a key-rotation image is signed by a rotation-authority key "
                          "this hub trusts, never by an image-signing anchor)",
           "INVALID_SIGNATURE": _BAD_SIG},
}  # fmt: skip


def check_set(files: list[ImageFile]) -> list[ImageFile]:
    """The full image's files ordered by fragment index, then the delta files by base
    version; SubmissionError unless the full files form one whole set, each delta is one
    file of the same image from its own base version, making that set's firmware."""
    if not files:
        raise SubmissionError("no image file given")
    first = files[0]
    key = (first.mfr, first.image_type, first.version, first.hw_min, first.hw_max)
    for f in files:
        if (f.mfr, f.image_type, f.version, f.hw_min, f.hw_max) != key:
            raise SubmissionError(f"{f.name}: not from the same image as {first.name}")
    full = [f for f in files if f.delta is None]
    deltas = sorted((f for f in files if f.delta is not None), key=lambda f: f.base_version)
    return (_check_fragments(full) if full else []) + _check_deltas(deltas, full)


def _check_fragments(files: list[ImageFile]) -> list[ImageFile]:
    first = files[0]
    for f in files:
        if f.count != first.count or f.total_length != first.total_length:
            raise SubmissionError(f"{f.name}: fragment count/total differs from {first.name}")
        if f.firmware_sha256 != first.firmware_sha256:
            raise SubmissionError(
                f"{f.name}: not from the same image as {first.name}: firmware SHA-256 "
                f"{f.firmware_sha256[:16]}... != {first.firmware_sha256[:16]}... (another build "
                f"of version {f.version:#010x})"
            )
    ordered = sorted(files, key=lambda f: f.index)
    indices = [f.index for f in ordered]
    if indices != list(range(first.count)):
        raise SubmissionError(
            f"fragments {[i + 1 for i in indices]} do not form the set 1..{first.count}"
        )
    end = 0
    for f in ordered:
        if f.fragment_offset != end:
            raise SubmissionError(f"{f.name}: fragment offset {f.fragment_offset} != {end}")
        end += f.fragment_length
    if end != first.total_length:
        raise SubmissionError(f"fragments cover {end} of {first.total_length} firmware bytes")
    return ordered


def _check_deltas(deltas: list[ImageFile], full: list[ImageFile]) -> list[ImageFile]:
    """Deltas of one submission: one file each, one per base version, all making the same
    firmware (the full image's, when there is one: the device that refuses a delta gets
    it instead, and must end up running the same bytes)."""
    if not deltas:
        return []
    want = (full[0].firmware_sha256, full[0].total_length) if full else None
    seen: dict[int, str] = {}
    for f in deltas:
        d = f.delta or {}
        if f.count != 1:
            raise SubmissionError(f"{f.name}: a delta is one file, not fragment {f.index + 1} "
                                  f"of {f.count}")  # fmt: skip
        if f.base_version in seen:
            raise SubmissionError(f"{f.name}: a second delta from version "
                                  f"{f.base_version:#010x} (first: {seen[f.base_version]})")  # fmt: skip
        seen[f.base_version] = f.name
        makes = (d["target_sha256"], d["target_length"])
        want = want or makes
        if makes != want:
            other = full[0].name if full else deltas[0].name
            raise SubmissionError(f"{f.name}: makes another firmware than {other} (target "
                                  f"SHA-256 {makes[0][:16]}..., {makes[1]} bytes)")  # fmt: skip
    return deltas


class ImageStore:
    """Files kept as STATE/images/<sha256>.zigbee (or in memory without a state dir)."""

    def __init__(self, root: Path | None):
        self.root = root
        self._cache: dict[str, bytes] = {}
        if root is not None:
            root.mkdir(parents=True, exist_ok=True)

    def add(self, paths: list[Path], anchors: dict[int, bytes] | None,
            authorities: dict[int, bytes] | None = None) -> list[ImageFile]:  # fmt: skip
        """Parse, check and keep a submission's files; returns them in fragment order.
        `anchors` (key id -> X||Y): verify every file whole against them, or a key-rotation
        file against `authorities` alone; None: the signatures are not checked here (a
        test harness's hub, HubConfig.check_images)."""
        parsed: list[ImageFile] = []
        blobs: dict[str, bytes] = {}
        for p in paths:
            try:
                data = Path(p).read_bytes()
            except OSError as exc:
                raise SubmissionError(f"{p}: cannot read: {exc.strerror}") from None
            f = parse_file(Path(p).name, data)
            parsed.append(f)
            blobs[f.sha256] = data
        ordered = check_set(parsed)
        rotation = ordered[0].image_type == KEYS_IMAGE_TYPE
        if rotation and (len(ordered) != 1 or ordered[0].delta is not None):
            raise SubmissionError("a key-rotation (0xFFC0) image is one file, never fragments")
        if anchors is not None:
            named = [(f.name, blobs[f.sha256]) for f in ordered]
            deltas = [f.delta for f in ordered]
            verify_set(named, (authorities or {}) if rotation else anchors, rotation, deltas)
        for sha, data in blobs.items():
            self._cache[sha] = data
            if self.root is not None:
                self._write(sha, data)
        return ordered

    def _write(self, sha: str, data: bytes) -> None:
        dest = self.root / f"{sha}.zigbee"  # type: ignore[operator]
        if not dest.exists():
            tmp = dest.with_suffix(".tmp")
            tmp.write_bytes(data)
            tmp.replace(dest)

    def data(self, sha: str) -> bytes:
        """The bytes of a kept file (from memory, else from the state dir)."""
        blob = self._cache.get(sha)
        if blob is None:
            if self.root is None:
                raise KeyError(sha)
            blob = (self.root / f"{sha}.zigbee").read_bytes()
            if hashlib.sha256(blob).hexdigest() != sha:
                raise KeyError(f"{sha}: stored file is corrupt")
            self._cache[sha] = blob
        return blob

    def remove_dir(self) -> None:
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
