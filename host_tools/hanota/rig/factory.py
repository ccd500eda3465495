"""Keys, signed images and provisioned device identities built on the fly for tests,
`hanota rig` and the demo, through the image and board tools' Python APIs.

Makes inputs only; it runs nothing (boards: sim.runner, hub: hanota.hub).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hanota.board import defs, provision
from hanota.image import build, keys


class Images:
    """A manufacturer key (PEM files under root) and images signed with it."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.key_path = self.root / "manufacturer.pem"
        self.pub_path = self.root / "manufacturer.pub.pem"
        if self.key_path.exists():
            self.key = keys.load_private(self.key_path)
        else:
            self.key = keys.generate()
            self.key_path.write_bytes(keys.private_pem(self.key))
            self.pub_path.write_bytes(keys.public_pem(self.key.public_key()))

    def build(self, version: int, *, board: str | None = None, payload: bytes | None = None,
              size: int = 20000, max_size: int = 750000, mfr: int | None = None,
              image_type: int | None = None, hw_min: int = 0, hw_max: int = 0xFFFF,
              compress: bool = False, name: str | None = None, base: bytes | None = None,
              base_version: int | None = None) -> list[Path]:  # fmt: skip
        """Signed OTA file(s) for a board definition (or explicit mfr/type). With `base`
        (and its version, else a sim app's header version): one delta file from it to
        `payload` (hanota image build --base)."""
        if board is not None:
            bdef = defs.load(board)
            mfr = bdef["manufacturer_code"] if mfr is None else mfr
            image_type = bdef["image_type"] if image_type is None else image_type
        if mfr is None or image_type is None:
            raise ValueError("give a board or mfr and image_type")
        target = build.Target(mfr, image_type, version, hw_min, hw_max)
        data = payload if payload is not None else os.urandom(size)
        if base is not None:
            from hanota.image import delta

            data = delta.payload_for(base, data, base_version)
        files = build.build(data, target, self.key, compress=compress, max_size=max_size,
                            delta=base is not None)  # fmt: skip
        out = self.root / (name or f"{image_type:04x}-{version:08x}-{max_size}")
        return build.write(out, files)


def device(board: str, suppliers: list[str], *, seed: str, short_addr: int = 1,
           anchors: list[Path] | None = None) -> tuple[provision.Identity, dict[str, Any]]:  # fmt: skip
    """A provisioned identity (with its private key) and the record the hub enrols."""
    bdef = defs.load(board)
    ident = provision.make_identity(
        bdef, seed=seed, short_addr=short_addr, suppliers=suppliers, anchors=anchors or []
    )
    return ident, provision.device_record(ident, bdef)
