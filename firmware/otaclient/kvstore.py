"""Atomic small-file store over a directory: one file per name, written as tmp + rename.

A power cut leaves either the old or the new content of a name (LittleFS and POSIX
renames replace atomically). Not for large data: values are read whole into RAM.
"""

import json
import os

from otaclient import Error as StoreError  # the store's name for the agent's error

_TMP = ".tmp"


class KVStore:
    """get(name) -> bytes|None; put(name, data) and put_json(name, obj) atomic;
    delete(name); names()."""

    def __init__(self, root):
        self.root = root.rstrip("/") or "/"
        self._clean()

    def _path(self, name):
        if not name or "/" in name or name.endswith(_TMP) or name[0] == ".":
            raise StoreError("BAD_NAME", repr(name))
        return self.root + "/" + name

    def get(self, name):
        try:
            f = open(self._path(name), "rb")
        except OSError:
            return None
        try:
            return f.read()
        finally:
            f.close()

    def put(self, name, data):
        if isinstance(data, str):
            data = data.encode()
        self._replace(name, data, None)

    def put_json(self, name, obj):
        """put(name, the JSON text of obj), written as it is encoded: the whole text is
        never one string in RAM (agent.json with signed alerts is hundreds of bytes, a
        free block a used heap may not have)."""
        self._replace(name, None, obj)

    def _replace(self, name, data, obj):
        path = self._path(name)
        tmp = path + _TMP
        f = open(tmp, "wb" if obj is None else "w")
        try:
            if obj is None:
                f.write(data)
            else:
                json.dump(obj, f)
            _sync(f)
        finally:
            f.close()
        os.rename(tmp, path)

    def delete(self, name):
        try:
            os.remove(self._path(name))
        except OSError:
            pass  # already absent: delete is idempotent

    def names(self):
        return sorted(n for n in os.listdir(self.root) if not n.endswith(_TMP))

    def _clean(self):
        # a cut between write and rename leaves a tmp file: the old value still stands
        for n in os.listdir(self.root):
            if n.endswith(_TMP):
                os.remove(self.root + "/" + n)


def _sync(f):
    f.flush()
    fsync = getattr(os, "fsync", None)  # CPython; LittleFS commits on close
    if fsync is not None:
        fsync(f.fileno())
