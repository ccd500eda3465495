"""Device policy from the store: identity, trust anchors, anti-rollback, bound CH, consent.

Decides only; it never touches flash or the link (client.py and reassembly.py act on it).
"""

import hashlib
from binascii import hexlify, unhexlify

from micropython import const

from otaclient.imagefmt import (
    M_COUNTER,
    M_HW_MAX,
    M_HW_MIN,
    M_KEY_ID,
    M_MFR,
    M_SHA256,
    M_TYPE,
    M_VERSION,
)
from otaclient.state import CONFIG, CONSENT, KEYS, load_json, save_json

MAX_FILE = const(750000)  # R1: one OTA file, header included
KEYS_IMAGE_TYPE = const(0xFFC0)  # ZigBee "client security credentials": key rotation
_BAD_HEADS = const(4)  # failed-file records kept in agent.json ("bad")
_MAX_FAILURES = const(3)  # refusals of one file (its signed head) before it is never tried on
_BACKOFF_S = const(60)  # wait after a file's refusal, doubled at each one after
ACCEPT = const(0)
DEFER = const(1)
REFUSE = const(2)

DEFAULTS = {
    "max_block": 255,  # maxDataSize of our requests (u8)
    "page_size": 4096,  # Image Page Request size; 0 = windowed Image Block Requests
    "window": 4,  # block requests in flight (block mode)
    "spacing_ms": 0,  # responseSpacing asked in page requests
    "block_timeout_ms": 1500,  # no progress for this long: re-request from the gap
    "max_retries": 40,  # consecutive timeouts before the transfer is dropped (resumable)
    "max_wait_s": 3600,  # cap of one WAIT_FOR_DATA wait
    "retry_s": 10,  # query / upgrade end request re-sent after this silence
    "query_interval_s": 3600,  # periodic Query Next Image when idle
    "wait_poll_s": 60,  # re-send Upgrade End Request while upgrade time is 0xFFFFFFFF
    "alert_retry_s": 15,  # re-send an unacknowledged activation alert
    "alert_stagger_s": 1,  # spacing between the alerts of different suppliers (R3)
    "max_attempts": 2,  # trial boots of one version that may fail before it is refused
    "heap_report": False,  # print live heap at boundaries on the console (heapreport.py)
}


class PolicyError(ValueError):
    """An image or command refused by policy; .code is fixed."""

    def __init__(self, code):
        super().__init__(code)
        self.code = code


def _keys(store):
    # trust.json (provisioning) overlaid by keys.json (rotation images), ids as ints; an
    # unreadable one raises ValueError (a lost revocation must not bring a key back)
    keys = {}
    for kid, pub in load_json(store, "trust.json", {}, True).items():
        keys[int(kid, 16)] = unhexlify(pub)
    rot = load_json(store, KEYS, {}, True)
    for kid, pub in rot.get("add", {}).items():
        keys[int(kid, 16)] = unhexlify(pub)
    for kid in rot.get("revoke", ()):
        keys.pop(int(kid, 16), None)
    return keys


class Policy:
    def __init__(self, port):
        store = port.store
        ident = load_json(store, "identity.json", {})
        board = port.board
        self.eui64 = unhexlify(ident.get("eui64", "00" * 8))
        self.short_addr = ident.get("short_addr", 1)
        self.ch_addr = ident.get("ch_addr", 0)
        self.suppliers = ident.get("suppliers", [])
        key = ident.get("device_key")
        self.device_key = unhexlify(key) if key else None
        self.mfr = board["manufacturer_code"]
        self.image_type = board["image_type"]
        self.hw = board["hw_version"]
        self.store = store
        self.supplier_keys = ident.get("supplier_keys", {})
        self.supplier_keys.update(load_json(store, "suppliers.json", {}))
        self.locked = None  # why updates are refused: security state that cannot be read
        try:
            self.keys = _keys(store)
            self.keys_version = load_json(store, KEYS, {}, True).get("version", 0)
        except ValueError as e:
            self.keys, self.keys_version, self.locked = {}, 0xFFFFFFFF, str(e)
        over = load_json(store, CONFIG)
        self.cfg = DEFAULTS  # shared, read only: a copy costs a 64 KB heap ~0.5 KB
        if over:
            self.cfg = dict(DEFAULTS)
            self.cfg.update(over)
        self.consent = load_json(store, CONSENT, {"mode": "accept"})

    def lookup_key(self, key_id):
        return self.keys.get(key_id)

    def from_ch(self, src):
        """R4: only the bound Comms Hub may drive the OTA client."""
        return src == self.ch_addr

    def offer_ok(self, rsp, running, failed, refused=(), now=0):
        """Query Next Image Response worth downloading (else ignored, spec behaviour).
        A version the consumer refused is not fetched again while consent still refuses."""
        _st, mfr, itype, ver, size = rsp  # records are plain tuples on a board
        if self.locked:
            return False
        if mfr != self.mfr or itype not in (self.image_type, KEYS_IMAGE_TYPE):
            return False
        if not 0 < size <= MAX_FILE:
            return False
        if itype == KEYS_IMAGE_TYPE:
            return ver > self.keys_version
        if ver <= running:
            return False
        attempts = sum(f[1] for f in failed if f[0] == ver)
        if attempts >= self.cfg["max_attempts"]:
            return False
        return ver not in refused or self.decide(now)[0] != REFUSE

    def check(self, m, offered, running, sec_counter):
        """Manifest of a file being fetched; raise PolicyError to refuse it."""
        if m[M_MFR] != self.mfr:
            raise PolicyError("WRONG_MANUFACTURER")
        if m[M_TYPE] != offered[2] or m[M_TYPE] not in (  # offer: image_type, version
            self.image_type,
            KEYS_IMAGE_TYPE,
        ):
            raise PolicyError("WRONG_IMAGE_TYPE")
        if not m[M_HW_MIN] <= self.hw <= m[M_HW_MAX]:
            raise PolicyError("HW_MISMATCH")
        if m[M_KEY_ID] not in self.keys:
            raise PolicyError("UNKNOWN_KEY")
        if m[M_VERSION] != offered[3]:
            raise PolicyError("VERSION_MISMATCH")
        floor = self.keys_version if m[M_TYPE] == KEYS_IMAGE_TYPE else running
        if m[M_VERSION] <= floor:
            raise PolicyError("DOWNGRADE")
        if m[M_COUNTER] < sec_counter:
            raise PolicyError("COUNTER")

    def failures(self, bad, head_id, now, failed=False):
        """The failed-file records `bad` ([[head hex, refusals, until]], the newest last):
        for a head about to be tried, None to go on, else why not (CAPPED after
        max_failures refusals, BACKOFF within failure_backoff_s * 2^(n-1) s of the n-th);
        with `failed`, the records with one more refusal of it (at most _BAD_HEADS: the
        oldest goes). One method, not two: each function object is heap on a board."""
        key = hexlify(head_id).decode()
        step = self.cfg.get("failure_backoff_s", _BACKOFF_S)
        n = 0
        keep = []
        for e in bad:
            if e[0] != key:
                keep.append(e)
                continue
            n = e[1]
            if failed:
                continue
            if n >= self.cfg.get("max_failures", _MAX_FAILURES):
                return "CAPPED"
            # a wait longer than it can be is a clock set back (an ESP32 after power-on
            # reads 2000): over, not years
            if 0 < e[2] - now <= step << (n - 1):
                return "BACKOFF"
        if not failed:
            return None
        n += 1
        return keep[max(0, len(keep) - _BAD_HEADS + 1) :] + [[key, n, now + (step << (n - 1))]]

    def decide(self, now):
        """R6 consent at activation time: (ACCEPT|DEFER|REFUSE, until)."""
        mode = self.consent.get("mode", "accept")
        if mode == "refuse":
            return REFUSE, 0
        until = self.consent.get("until", 0)
        if mode == "defer" and until > now:
            return DEFER, until
        return ACCEPT, 0

    def check_supplier(self, ver, scratch=None):
        """R2: an SR 11.1-form supplier trailer must verify with a served supplier's key."""
        if ver.supplier_signature is None:
            return
        from otaclient.image import p256_call

        sig = ver.supplier_signature
        for s in self.suppliers:
            pub = self.supplier_keys.get(s)
            if pub and p256_call("verify", unhexlify(pub), ver.supplier_digest, sig, scratch):
                return
        raise PolicyError("SUPPLIER")

    def apply_keys(self, data, m):
        """A verified key-rotation image: 65-byte records, op 1 add / 2 revoke + X||Y."""
        if len(data) % 65 or hashlib.sha256(data).digest() != m[M_SHA256]:
            raise PolicyError("BAD_KEYS")
        rot = load_json(self.store, KEYS, {})
        add = rot.get("add", {})
        revoke = rot.get("revoke", [])
        for i in range(0, len(data), 65):
            op = data[i]
            pub = bytes(data[i + 1 : i + 65])
            kid = "%08x" % int.from_bytes(hashlib.sha256(pub).digest()[:4], "big")
            if op == 1:
                add[kid] = hexlify(pub).decode()
                revoke = [k for k in revoke if k != kid]
            elif op == 2:
                add.pop(kid, None)
                revoke.append(kid)
            else:
                raise PolicyError("BAD_KEYS")
        save_json(self.store, KEYS, {"version": m[M_VERSION], "add": add, "revoke": revoke})
        self.keys = _keys(self.store)
        self.keys_version = m[M_VERSION]
