"""Device policy from the store: identity, key sets, anti-rollback, bound CH, consent.

Decides only; it never touches flash or the link (client.py and reassembly.py act on it),
and applies no key rotation itself (otaclient.rotation, loaded for that one use).
"""

from binascii import hexlify, unhexlify

from micropython import const

from otaclient import let_go
from otaclient.imagefmt import (
    M_COUNTER,
    M_HW_MAX,
    M_HW_MIN,
    M_KEY_ID,
    M_MFR,
    M_TYPE,
    M_VERSION,
    MAX_FILE,
)
from otaclient.state import CONFIG, CONSENT, KEYS, load_json
from otaclient.zcl_client import Q_TYPE, Q_VERSION

KEYS_IMAGE_TYPE = const(0xFFC0)  # ZigBee "client security credentials": key rotation
AUTHORITY = "authority.json"  # provisioned rotation-authority keys (keys.json after a rotation)
_BAD_HEADS = const(4)  # failed-file records kept in agent.json ("bad")
_MAX_FAILURES = const(3)  # refusals of one file (its signed head) before it is never tried on
_BACKOFF_S = const(60)  # wait after a file's refusal, doubled at each one after
ACCEPT = const(0)
DEFER = const(1)
REFUSE = const(2)

DEFAULTS = {
    "max_block": 254,  # maxDataSize of our requests: an octet string of length 0xFF is invalid
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


def _sets(store):
    """(rotation counter, anchors, authority), each set {key id hex: pub hex}: keys.json's
    once a rotation was applied (it holds both sets whole), else the provisioned trust.json
    and authority.json at counter 0. One that exists but cannot be read raises ValueError
    (a lost revocation must not bring a key back)."""
    rot = load_json(store, KEYS, None, True)
    if rot is None:
        return 0, load_json(store, "trust.json", {}, True), load_json(store, AUTHORITY, {}, True)
    try:
        return rot["counter"], rot["anchors"], rot["authority"]
    except KeyError:  # not this agent's form (an older agent's overlay): not trusted
        raise ValueError(KEYS + " unreadable")


def _load(pol):
    # the image-signing anchors {id: X||Y} and the authority's ids only: an authority key
    # is read from the store for a 0xFFC0 head alone (lookup_key)
    pol.keys_counter, anchors, auth = _sets(pol.store)
    pol.keys = {}
    for kid in anchors:
        pol.keys[int(kid, 16)] = unhexlify(anchors[kid])
    pol.auth = tuple(int(kid, 16) for kid in auth)


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
            _load(self)
        except ValueError as e:
            self.keys, self.auth, self.keys_counter, self.locked = {}, (), 0, str(e)
        over = load_json(store, CONFIG)
        self.cfg = DEFAULTS  # shared, read only: a copy would be a second dict held
        if over:
            self.cfg = dict(DEFAULTS)
            self.cfg.update(over)
        self.consent = load_json(store, CONSENT, {"mode": "accept"})

    def lookup_key(self, key_id):
        """The key a head names: an anchor's, or a rotation authority's (check() then
        refuses it for anything but a 0xFFC0 head: the two sets share no key id)."""
        if key_id in self.auth:
            try:
                auth = _sets(self.store)[2]
            except ValueError:
                return None
            for kid in auth:
                if int(kid, 16) == key_id:
                    return unhexlify(auth[kid])
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
        if itype == KEYS_IMAGE_TYPE:  # the next rotation exactly (check() says why)
            return ver == self.keys_counter + 1 and len(self.auth) > 0
        if ver <= running:
            return False
        attempts = sum(k for v, k in failed if v == ver)  # failed: [[version, attempts]]
        if attempts >= self.cfg["max_attempts"]:
            return False
        return ver not in refused or self.decide(now)[0] != REFUSE

    def check(self, m, offered, running, sec_counter):
        """Manifest of a file being fetched; raise PolicyError to refuse it."""
        if m[M_MFR] != self.mfr:
            raise PolicyError("WRONG_MANUFACTURER")
        rot = m[M_TYPE] == KEYS_IMAGE_TYPE
        if m[M_TYPE] != offered[Q_TYPE] or not rot and m[M_TYPE] != self.image_type:
            raise PolicyError("WRONG_IMAGE_TYPE")
        if not m[M_HW_MIN] <= self.hw <= m[M_HW_MAX]:
            raise PolicyError("HW_MISMATCH")
        # key sets are signed by a rotation authority only, firmware by an anchor only
        if m[M_KEY_ID] not in (self.auth if rot else self.keys):
            raise PolicyError("NOT_AUTHORITY" if rot else "UNKNOWN_KEY")
        if m[M_VERSION] != offered[Q_VERSION]:
            raise PolicyError("VERSION_MISMATCH")
        if rot:
            # a key set's file version is its rotation counter: the next one exactly, so
            # no signed image can use the counter space up (anti-replay by the same rule)
            if m[M_VERSION] != self.keys_counter + 1:
                raise PolicyError("ROTATION_COUNTER")
            return
        if m[M_VERSION] <= running:
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
            head, refusals, until = e
            if head != key:
                keep.append(e)
                continue
            n = refusals
            if failed:
                continue
            if n >= self.cfg.get("max_failures", _MAX_FAILURES):
                return "CAPPED"
            # a wait longer than it can be is a clock set back (an ESP32 after power-on
            # reads 2000): over, not years
            if 0 < until - now <= step << (n - 1):
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
        """A verified key-rotation image: the key sets it leaves (otaclient.rotation, loaded
        for this call only) are persisted, then are the board's. PolicyError if refused."""
        from otaclient import rotation

        try:
            rotation.apply(self.store, data, m, _sets(self.store))
        finally:
            let_go("rotation")
        _load(self)
