"""Image store and submission checks: OTA files parsed with otaclient.image, kept by SHA-256.

Checks R1 size, header, manifest and fragment set, then, given the hub's manufacturer
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

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

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
    )


def verify_set(named: list[tuple[str, bytes]], anchors: dict[int, bytes],
               rotation: bool = False) -> None:  # fmt: skip
    """Each file verified whole against `anchors` (key id -> X||Y): signature over every
    byte it signs, payload digest, length; then the fragments assembled against the
    manifest's firmware SHA-256. With `rotation`, `anchors` are the rotation authority's
    and the one file's payload must be well-formed key records. SubmissionError naming
    the file and the failure."""
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
    problems = verify.check_set(results)
    if problems:
        raise SubmissionError("; ".join(problems))
    if rotation:
        from hanota.image import rotation as rot

        try:
            rot.parse(b"".join(part for _off, part in results[0].parts))
        except ValueError as exc:
            raise SubmissionError(f"{named[0][0]}: key-rotation payload: {exc}") from None


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
    """The files ordered by fragment index; SubmissionError unless they form one whole set."""
    if not files:
        raise SubmissionError("no image file given")
    first = files[0]
    key = (first.mfr, first.image_type, first.version, first.hw_min, first.hw_max)
    for f in files:
        if (f.mfr, f.image_type, f.version, f.hw_min, f.hw_max) != key:
            raise SubmissionError(f"{f.name}: not from the same image as {first.name}")
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
        if rotation and len(ordered) != 1:
            raise SubmissionError("a key-rotation (0xFFC0) image is one file, never fragments")
        if anchors is not None:
            named = [(f.name, blobs[f.sha256]) for f in ordered]
            verify_set(named, (authorities or {}) if rotation else anchors, rotation)
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
