"""otaclient.kvstore: atomic put (tmp + rename), get, delete, under CPython and MicroPython."""

from __future__ import annotations

import pytest
from mpy import check_mpy
from otaclient.kvstore import KVStore, StoreError


def test_put_get_delete(tmp_path):
    st = KVStore(str(tmp_path))
    assert st.get("identity.json") is None
    st.put("identity.json", b'{"eui64": "00"}')
    st.put("trust.json", "text is stored as UTF-8")
    assert st.get("identity.json") == b'{"eui64": "00"}'
    assert st.get("trust.json") == b"text is stored as UTF-8"
    st.put("identity.json", b"new")
    assert st.get("identity.json") == b"new"
    assert st.names() == ["identity.json", "trust.json"]
    st.delete("identity.json")
    st.delete("identity.json")
    assert st.get("identity.json") is None


def test_leftover_tmp_from_a_cut_is_dropped_and_old_value_stands(tmp_path):
    KVStore(str(tmp_path)).put("progress", b"old")
    (tmp_path / "progress.tmp").write_bytes(b"half-writ")
    st = KVStore(str(tmp_path))
    assert st.get("progress") == b"old"
    assert not (tmp_path / "progress.tmp").exists()


@pytest.mark.parametrize("name", ["", "a/b", "x.tmp", ".hidden"])
def test_bad_names_refused(tmp_path, name):
    with pytest.raises(StoreError):
        KVStore(str(tmp_path)).put(name, b"x")


def test_under_micropython_on_littlefs():
    out = check_mpy(
        """
import vfs
from otaclient.kvstore import KVStore
class BD:
    def __init__(self):
        self.d = bytearray(b"\\xff" * 8 * 4096)
    def readblocks(self, b, buf, off=0):
        o = b * 4096 + off
        buf[:] = self.d[o:o + len(buf)]
    def writeblocks(self, b, buf, off=0):
        o = b * 4096 + off
        self.d[o:o + len(buf)] = buf
    def ioctl(self, op, arg):
        if op == 4: return 8
        if op == 5: return 4096
        if op == 6: self.d[arg * 4096:(arg + 1) * 4096] = b"\\xff" * 4096
        return 0
bd = BD()
vfs.VfsLfs2.mkfs(bd)
vfs.mount(vfs.VfsLfs2(bd), "/data")
st = KVStore("/data")
st.put("a", b"1"); st.put("a", b"2"); st.put("b", b"3"); st.delete("b")
print(st.get("a"), st.get("b"), st.names())
""",
        heap="256k",
    )
    assert out.split("\n")[0] == "b'2' None ['a']"
