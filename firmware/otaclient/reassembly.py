"""Fragments -> update slot: each sector erased as the fragment enters it, bytes written
through one 1 KB buffer, progress persisted.

Gets only authenticated bytes (the verifier's sink: each chunk hashed to its signed
link) and records a fragment as done once the whole file checked out (caller's finish
order); a fragment of a newer firmware that would overwrite a staged one is verified
once without writing first (a proof pass), so a corrupt one costs nothing staged. It
does not parse images or talk to the CH. Progress survives resets, a fragment in
flight does not (hash state cannot be saved): a reset costs at most that fragment.
"""

import hashlib
from binascii import hexlify, unhexlify

from micropython import const

from otaclient import let_go
from otaclient.imagefmt import (
    M_COUNT,
    M_COUNTER,
    M_DELTA,
    M_INDEX,
    M_KEY_ID,
    M_LENGTH,
    M_OFFSET,
    M_SHA256,
    M_TOTAL,
    M_VERSION,
    SECTOR_SIZE,
    ImageError,
)
from otaclient.policy import PolicyError
from otaclient.state import PROGRESS, load_json, save_json

_UNIT = const(1024)  # bytes per flash write: a quarter sector held, not a whole one
_WRITE = const(1)  # another firmware's fragment, written (old fragments trimmed)
_PROVE = const(2)  # another firmware's fragment over staged ones: verified, not written


def _hex(b):
    return hexlify(b).decode()


_shared = None


def _unit(block_size):
    return _UNIT if block_size % _UNIT == 0 else block_size


def prepare(block_size):
    """Boot: allocate the one long-lived write buffer now, before imports and agent
    restarts fragment the heap."""
    global _shared
    _shared = write_buffer(block_size)


def write_buffer(block_size):
    """The buffer prepare() made, else a new one (host tests run several agents at once)."""
    n = _unit(block_size)
    return _shared if _shared is not None and len(_shared) == n else bytearray(n)


class Reassembly:
    def __init__(self, port, buf):
        self.port = port
        self._bs = port.block_size
        if SECTOR_SIZE % self._bs or self._bs % len(buf):
            # fragments start on SECTOR_SIZE boundaries: no erase block may span two
            raise ValueError("erase block %d does not divide %d" % (self._bs, SECTOR_SIZE))
        # the session's one write buffer (write_buffer()); the client lends it to the
        # verifier to hold an uncompressed chunk in until it is authenticated: that chunk
        # then comes to sink() from the buffer's own start (chunks are CHUNK_SIZE, the
        # unit, and fragments start on sectors), and the copy there is a no-op
        self.buf = buf
        self._mv = memoryview(buf)
        self.progress = load_json(port.store, PROGRESS)
        self._frag = None  # (index, start, end, total) of the fragment in flight
        self._held = -1  # write unit held in the buffer
        self._replace = 0  # fragment in flight: 0 same firmware, _WRITE another, _PROVE
        self._proven = None  # (index, start, end, version, sha) a proof pass verified
        self._delta = None  # a delta file's applier (otaclient.delta), while one is in flight
        self._base = None  # (length, SHA-256) of the running slot, once a delta asked for it

    def _same(self, m):
        # a staged delta is named by its payload's digest ("d"); "sha" and "total" are
        # then its target's, which verify_slot and activation read
        p = self.progress
        d = p.get("d")
        return (
            p["v"] == m[M_VERSION]
            and (d == _hex(m[M_SHA256]) if m[M_DELTA] else d is None)
            and (m[M_DELTA] or p["sha"] == _hex(m[M_SHA256]) and p["total"] == m[M_TOTAL])
            and p["n"] == m[M_COUNT]
            and p["sc"] == m[M_COUNTER]
        )

    def begin(self, m):
        """A fragment's manifest: True to fetch it, False if already staged (duplicate).
        Another firmware's fragment, over staged progress:
        - an older or equal version is refused (OTHER_IMAGE), unless the CH discarded the
          staged one (R5, "x");
        - else it replaces the staged firmware only once a fragment of it verified: one
          that would overwrite a staged fragment is first fetched and verified with nothing
          written (_PROVE: finish() returns None, the client fetches it again), then written;
        - the old fragments go one by one as their sectors are overwritten (_trim), the
          rest when it verifies (finish): a corrupt or refused file leaves them as they were.
        """
        start = m[M_OFFSET]
        end = start + m[M_LENGTH]
        if not 0 <= m[M_INDEX] < m[M_COUNT] or end <= start:
            raise PolicyError("BAD_FRAGMENT")
        if end > m[M_TOTAL] or m[M_TOTAL] > self.port.slot_size:
            raise PolicyError("BAD_FRAGMENT")
        replace = _WRITE if self.progress is not None and not self._same(m) else 0
        if replace and m[M_VERSION] <= self.progress["v"] and not self.progress.get("x"):
            raise PolicyError("OTHER_IMAGE")  # an older image never cancels a newer one
        proven, self._proven = self._proven, None
        self._drop_delta()
        if m[M_DELTA]:
            if not replace and self.progress is not None:
                return False  # the same delta, staged: its progress is written only whole
            end = self.port.slot_size  # its target may fill any of the slot
        for i, s, n in self.progress["done"] if self.progress else ():
            over = s < end and start < s + n
            if replace:
                if over and proven != (m[M_INDEX], start, end, m[M_VERSION], m[M_SHA256]):
                    replace = _PROVE
            elif i == m[M_INDEX] and s == start and n == end - start:
                return False
            elif i == m[M_INDEX] or over:
                raise PolicyError("BAD_FRAGMENT")  # overlapping, or same index elsewhere
        self._frag = (m[M_INDEX], start, start + m[M_LENGTH], m[M_TOTAL])
        self._replace = replace
        self._pos = start
        self._held = -1
        if m[M_DELTA]:
            self._start_delta()
        return True

    # --- a delta file: its payload goes to the applier, the target bytes to _put ------------

    def _start_delta(self):
        from otaclient import delta

        self._delta = delta.Applier(
            self.port.read_running, self._base_digest, self._target, self.port.slot_size,
            self._replace == _PROVE,
        )  # fmt: skip
        self._tpos = 0

    def _target(self, mv):
        if not self._tpos:  # the descriptor checked out: the slot's firmware is the target
            self._frag = self._frag[:3] + (self._delta.target_length,)
        self._put(self._tpos, mv)
        self._tpos += len(mv)

    def _base_digest(self, length):
        # the running slot never changes while this program runs: hashed once, kept
        if self._base is None or self._base[0] != length:
            from otaclient import delta

            self._base = (length, delta.digest(self.port.read_running, length, self._delta._buf))
        return self._base[1]

    def _drop_delta(self):
        if self._delta is not None:
            self._delta = None
            let_go("delta")

    def sink(self, off, mv):
        """Firmware bytes at firmware offset `off`, increasing (the verifier's sink)."""
        n = len(mv)
        if self._frag is None or off != self._pos or off + n > self._frag[2]:
            raise PolicyError("BAD_FRAGMENT")
        if self._delta is not None:  # a delta's payload: its applier writes through _put
            try:
                self._delta.feed(mv)
            except ImageError as e:
                if e.code == "DELTA_BASE":
                    self.port.log("ota: delta refused: the running firmware is not its base")
                raise
            self._pos = off + n
            return
        if self._replace == _PROVE:
            self._pos = off + n  # proof pass: hashed by the verifier, not written
            return
        self._put(off, mv)
        self._pos = off + n

    def _put(self, off, mv):
        # bytes for the slot at `off`, through the write buffer
        n = len(mv)
        unit = len(self.buf)
        i = 0
        while i < n:
            pos = off + i
            u = self._held = pos // unit  # the unit the buffer holds
            rel = pos - u * unit
            k = min(n - i, unit - rel)
            self.buf[rel : rel + k] = mv[i : i + k]
            i += k
            if rel + k == unit:
                self._flush()

    def _flush(self):
        unit = len(self.buf)
        base = self._held * unit
        if base % self._bs == 0:
            # First write into an erase block: it is this fragment's alone (fragments are
            # aligned), so erase it, after forgetting any old fragment there (cut-safe).
            blk = base // self._bs
            if self._replace:
                self._trim(base, base + self._bs)
            self.port.erase(blk)
        self.port.write(base, self._mv[: min(unit, self._frag[3] - base)])
        self._held = -1

    def _trim(self, lo, hi):
        # Before overwriting [lo, hi): forget the old fragments stored there (cut-safe).
        p = self.progress
        if p is None:
            return
        keep = [d for d in p["done"] if d[1] + d[2] <= lo or d[1] >= hi]
        if len(keep) == len(p["done"]):
            return
        if not keep:
            return self.cancel()
        p = dict(p)
        p["done"] = keep
        save_json(self.port.store, PROGRESS, p)
        self.progress = p

    def scratch(self):
        """Write out any held bytes and lend the write buffer (1 KB): P-256's scratch for a
        head's signature check, before the fragment's first chunk needs the buffer."""
        if self._held >= 0:
            self._flush()
        return self.buf

    def finish(self, m):
        """After the fragment's signature verified: flush, persist. True when all are in,
        None after a proof pass (nothing written: fetch the same file again to write it)."""
        index, start, end, total = self._frag
        if self._held >= 0:
            self._flush()
        if self._pos != end:
            raise PolicyError("BAD_FRAGMENT")
        sha = m[M_SHA256]
        if self._delta is not None:  # every op whole; the slot now holds the whole target
            self._delta.end()
            sha, total, start, end = self._delta.target_sha256, self._tpos, 0, self._tpos
            self._drop_delta()
        if self._replace == _PROVE:
            self._proven = (index, start, end, m[M_VERSION], m[M_SHA256])
            self._frag = None
            return None
        p = None if self._replace else self.progress
        if p is None:
            p = {"v": m[M_VERSION], "sha": _hex(sha), "total": total}
            p.update({"n": m[M_COUNT], "sc": m[M_COUNTER], "done": []})
            if m[M_DELTA]:  # named by its payload's digest: a staged delta is not fetched again
                p["d"] = _hex(m[M_SHA256])
        p = dict(p)
        p.pop("x", None)  # served again: no longer discarded
        k = p.get("k", [])  # the fragments' signing key ids: re-checked at activation
        p["k"] = k if m[M_KEY_ID] in k else k + [m[M_KEY_ID]]
        p["done"] = p["done"] + [[index, start, end - start]]
        save_json(self.port.store, PROGRESS, p)
        self.progress = p
        self._frag = None
        return self.complete()

    def complete(self):
        p = self.progress
        return p is not None and len(p["done"]) == p["n"]

    def abort(self):
        """Drop the fragment in flight. What it wrote was authenticated chunks of it
        (nothing else reaches the sink): left as they are, never recorded as done."""
        self._drop_delta()
        self._frag = None
        self._held = -1

    def discarded(self):
        """The CH discarded this image mid-transfer (R5): its progress stays for its return,
        but any other image the policy accepts may now replace it, older ones included."""
        p = self.progress
        if p is not None and not p.get("x"):
            p = dict(p)
            p["x"] = 1
            save_json(self.port.store, PROGRESS, p)
            self.progress = p

    def cancel(self):
        """Forget all staged progress (the slot bytes are simply overwritten later)."""
        if self.progress is not None:
            self.port.store.delete(PROGRESS)
        self.progress = None

    def verify_slot(self):
        """Read the whole staged firmware back from flash; digest and app check, or raise."""
        p = self.progress
        total = p["total"]
        h = hashlib.sha256()
        off = 0
        while off < total:
            n = min(len(self.buf), total - off)
            mv = self._mv[:n]
            self.port.read(off, mv)
            h.update(mv)
            off += n
        if h.digest() != unhexlify(p["sha"]):
            raise PolicyError("SLOT_DIGEST")
        v = self.port.check_app(total)  # the app's own version, where the port can read one
        if v is not None and v != p["v"]:
            raise PolicyError("APP_VERSION")
