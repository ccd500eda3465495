"""`hanota image keygen|pubkey|build|rotation|inspect|verify`: thin commands over the modules below."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..output import CommandError, emit_json, log, parse_int


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("image", help="keys, build, inspect and verify signed OTA images")
    p.set_defaults(area_parser=p)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("keygen", help="generate a P-256 private key (PEM)")
    s.add_argument("-o", "--output", required=True, type=Path, help="private key file to write")
    s.set_defaults(func=cmd_keygen)

    s = sub.add_parser("pubkey", help="export the public key of a private key (PEM)")
    s.add_argument("key", type=Path, help="private key file (PEM)")
    s.add_argument("-o", "--output", required=True, type=Path, help="public key file to write")
    s.set_defaults(func=cmd_pubkey)

    s = sub.add_parser("build", help="sign a firmware payload into one or more OTA files")
    s.add_argument("payload", type=Path, help="the firmware exactly as it will sit in the slot")
    s.add_argument("--key", required=True, type=Path, help="manufacturer private key (PEM)")
    s.add_argument("--manufacturer", required=True, type=parse_int,
                   help="manufacturer code (u16) in the OTA header")  # fmt: skip
    s.add_argument("--image-type", required=True, type=parse_int,
                   help="image type (u16) in the OTA header: which devices take it")  # fmt: skip
    s.add_argument("--version", required=True, type=parse_int, help="file version (u32)")
    s.add_argument("--hw-min", required=True, type=parse_int,
                   help="lowest hardware version (u16) the image is for")  # fmt: skip
    s.add_argument("--hw-max", required=True, type=parse_int,
                   help="highest hardware version (u16) the image is for")  # fmt: skip
    s.add_argument("--security-counter", type=parse_int, default=0,
                   help="anti-rollback counter (u32, default 0): a board refuses a lower one")  # fmt: skip
    s.add_argument("--compress", action="store_true", help="deflate, 4 KB window, per sector")
    s.add_argument("--max-size", type=parse_int, default=750000, help="largest whole file")
    s.add_argument(
        "--supplier-key",
        type=Path,
        help="add a 00 40 supplier signature (after the manufacturer signature)",
    )
    s.add_argument("--base", type=Path, metavar="OLD.bin",
                   help="a delta: the payload is a patch from this firmware (docs/image-format.md)")  # fmt: skip
    s.add_argument("--base-version", type=parse_int,
                   help="the base's version (default: a sim app's header version)")  # fmt: skip
    s.add_argument("-o", "--outdir", required=True, type=Path,
                   help="directory for the OTA files (one per fragment)")  # fmt: skip
    s.set_defaults(func=cmd_build)

    s = sub.add_parser(
        "rotation",
        help="sign a key-rotation image (0xFFC0) with a rotation-authority key",
        description="Build one key-rotation OTA file (image type 0xFFC0). A board applies it "
        "only when it is signed by one of its current rotation-authority keys (never an "
        "image-signing anchor) and its counter is exactly the board's rotation counter + 1 "
        "(0 on a board never rotated). Records are written adds first, then revokes; a "
        "board refuses a rotation that would leave it no anchor, no authority key, or one "
        "key in both roles.",
    )
    s.add_argument("--key", required=True, type=Path, help="rotation-authority private key (PEM)")
    s.add_argument("--manufacturer", required=True, type=parse_int,
                   help="manufacturer code (u16) of the boards to rotate")  # fmt: skip
    s.add_argument("--counter", required=True, type=parse_int,
                   help="the boards' rotation counter + 1 (the file version)")  # fmt: skip
    for op in rotation_ops():
        s.add_argument(f"--{op}", action="append", default=[], type=Path, metavar="PUB.pem",
                       help=f"{op.replace('-', ' ')} key (repeatable)")  # fmt: skip
    s.add_argument("--hw-min", type=parse_int, default=0,
                   help="lowest hardware version (u16) it is for (default 0)")  # fmt: skip
    s.add_argument("--hw-max", type=parse_int, default=0xFFFF,
                   help="highest hardware version (u16) it is for (default 0xFFFF)")  # fmt: skip
    s.add_argument("-o", "--outdir", required=True, type=Path,
                   help="directory for the rotation OTA file")  # fmt: skip
    s.add_argument("--json", action="store_true", help="one JSON document on stdout")
    s.set_defaults(func=cmd_rotation)

    s = sub.add_parser("inspect", help="show every header and manifest field of an OTA file")
    s.add_argument("file", type=Path, help="an OTA file")
    s.add_argument("--json", action="store_true", help="one JSON document on stdout")
    s.set_defaults(func=cmd_inspect)

    s = sub.add_parser("verify", help="verify files (and that fragments form one firmware)")
    s.add_argument("files", nargs="+", type=Path,
                   help="OTA files: one, or all fragments of one firmware")  # fmt: skip
    s.add_argument(
        "--pubkey", required=True, type=Path, action="append", help="trusted key (repeatable)"
    )
    s.add_argument("--supplier-pubkey", type=Path, help="also require this supplier's trailer")
    s.add_argument("--manufacturer", type=parse_int, help="refuse other manufacturer codes")
    s.add_argument("--image-type", type=parse_int, help="refuse other image types")
    s.add_argument("--hw-version", type=parse_int, help="refuse images not for this hardware")
    s.add_argument("--max-size", type=parse_int, default=750000,
                   help="refuse a file larger than this (bytes, default 750000)")  # fmt: skip
    s.add_argument("--base", type=Path, metavar="OLD.bin", help="apply a delta file to this base")
    s.set_defaults(func=cmd_verify)


def cmd_keygen(args: argparse.Namespace) -> int:
    from . import keys

    if args.output.exists():
        raise CommandError(f"{args.output} exists; not overwriting a key")
    _write(args.output, keys.private_pem(keys.generate()), 0o600)
    print(f"wrote {args.output}")
    return 0


def cmd_pubkey(args: argparse.Namespace) -> int:
    from otaclient import image

    from . import keys

    pub = keys.load_private(args.key).public_key()
    _write(args.output, keys.public_pem(pub), 0o644)
    print(f"wrote {args.output} (key id {image.key_id(keys.raw_public(pub)):08x})")
    return 0


def _write(path: Path, data: bytes, mode: int) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(mode)
    except OSError as exc:
        raise CommandError(f"cannot write {path}: {exc.strerror}") from None


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CommandError(f"{what} {path}: no such file") from None
    except OSError as exc:
        raise CommandError(f"{what} {path}: {exc.strerror}") from None


def cmd_build(args: argparse.Namespace) -> int:
    from . import build, keys

    key = keys.load_private(args.key)
    supplier = keys.load_private(args.supplier_key) if args.supplier_key else None
    target = build.Target(
        args.manufacturer,
        args.image_type,
        args.version,
        args.hw_min,
        args.hw_max,
        args.security_counter,
    )
    payload = _read(args.payload, "payload")
    if args.base is not None:
        from .delta import payload_for

        payload = payload_for(_read(args.base, "base"), payload, args.base_version)
    if args.max_size > 750000:
        log(f"warning: --max-size {args.max_size} exceeds the 750000-byte limit (R1)")
    files = build.build(
        payload, target, key, compress=args.compress, max_size=args.max_size,
        supplier_key=supplier, delta=args.base is not None,
    )  # fmt: skip
    for path, (_, data) in zip(build.write(args.outdir, files), files, strict=True):
        print(f"wrote {path} ({len(data)} bytes)")
    return 0


def rotation_ops() -> tuple[str, ...]:
    from .rotation import OPS

    return tuple(OPS.values())


def cmd_rotation(args: argparse.Namespace) -> int:
    from otaclient import image

    from . import build, keys, rotation

    key = keys.load_private(args.key)
    recs = rotation.records({op: getattr(args, op.replace("-", "_")) for op in rotation_ops()})
    name, data = rotation.build_image(
        recs, args.counter, key, args.manufacturer, args.hw_min, args.hw_max
    )
    (path,) = build.write(args.outdir, [(name, data)])
    signer = f"{image.key_id(keys.raw_public(key.public_key())):08x}"
    if args.json:
        emit_json({"file": str(path), "size": len(data), "counter": args.counter,
                   "signer_key_id": signer, "records": [r.to_json() for r in recs]})  # fmt: skip
        return 0
    print(f"wrote {path} ({len(data)} bytes): rotation counter {args.counter}, "
          f"signed by authority key {signer}")  # fmt: skip
    for r in recs:
        print(f"  {rotation.OPS[r.op]} {r.key_id}")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from otaclient import image

    from . import inspect

    try:
        doc = inspect.describe(_read(args.file, "image"))
    except image.ImageError as exc:
        raise CommandError(f"{args.file}: {exc}") from None
    if args.json:
        emit_json(doc)
    else:
        print("\n".join(inspect.text_lines(doc)))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from otaclient import image

    from . import keys, verify

    trusted = {}
    for path in args.pubkey:
        raw = keys.raw_public(keys.load_public(path))
        trusted[image.key_id(raw)] = raw
    supplier = keys.load_public(args.supplier_pubkey) if args.supplier_pubkey else None
    check = image.make_check(args.manufacturer, args.image_type, args.hw_version)
    results = [
        verify.verify_file(str(f), _read(f, "image"), trusted, check, supplier, args.max_size)
        for f in args.files
    ]
    lines = [r.line() for r in results]
    bad = any(r.code for r in results)
    if not bad:
        problems = verify.check_set(results)
        lines += problems
        bad = bool(problems)
    if not bad:
        ordered = sorted(results, key=lambda r: r.manifest.fragment_index)
        more, ok = verify.check_delta(ordered, _read(args.base, "base") if args.base else None)
        lines += more
        bad = not ok
    print("\n".join(lines))
    sys.stdout.flush()
    return 1 if bad else 0
