"""The ZCL OTA Upgrade client state machine: notify -> query -> fetch -> verify -> end -> activate.

Owns the session buffer, the verifier and the reassembly; it does not read the link,
persist alerts or reboot (agent.py and activation.py do). A file's head is fetched
alone and authenticated before any payload is asked for; no chunk reaches flash before
it hashed to its signed link, and nothing is activated before the slot read-back passed.
"""

import random

from micropython import const

from otaclient import download, image, zcl_client
from otaclient.imagefmt import (
    H_TOTAL_SIZE,
    M_COUNT,
    M_TOTAL,
    M_TYPE,
    MAX_FILE,
    SIG_SIZE,
    SIGNED_END,
)
from otaclient.policy import KEYS_IMAGE_TYPE, PolicyError
from otaclient.reassembly import Reassembly, write_buffer

try:
    from time import ticks_diff
except ImportError:

    def ticks_diff(a, b):
        return a - b


IDLE = const(0)
QUERY = const(1)
FETCH = const(2)
END = const(3)  # Upgrade End Request SUCCESS sent, waiting for the response
WAIT = const(4)  # upgrade time 0xFFFFFFFF: re-ask periodically
SCHED = const(5)  # activation scheduled at self.activate_at (port.now() seconds)
NAMES = ("idle", "query", "fetch", "end", "wait", "sched")
_NEVER = const(0xFFFFFFFF)
_KEYS_MAX = const(1040)  # a key-rotation payload: up to 16 records of 65 bytes


class Client:
    def __init__(self, port, policy, state, send):
        self.port = port
        self.policy = policy
        self.state = state
        self._send = send  # send(cmd, payload)
        self.cfg = policy.cfg
        self.reasm = Reassembly(port, write_buffer(port.block_size))
        self.st = IDLE
        self.dl = None  # the Download of the file in flight, else None
        self._ver = None  # its Verifier, else None
        # one of each for the program's life, reset per file (image.Verifier.reset)
        self._verifier = image.Verifier(None, None)
        self._download = download.Download(send, None, None, self.cfg)
        self._qseq = None  # ZCL sequence number of the last Query Next Image Request
        self._keys = None  # key-rotation payload being captured
        self.ended = None  # the offer whose image is complete and verified
        self.activate_at = 0
        self._tries = 0
        self._due = port.ticks_ms()
        self.on_activate = None  # agent: activate(now) when the time has come
        self.on_boundary = None  # tests/bench: called at every block / fragment boundary
        self.on_fragment = None  # heap report: called after each fragment's boundary
        self.log = port.log

    def _goto(self, st, delay_ms=0):
        self.st = st
        self._tries = 0
        self._due = self.port.ticks_ms() + delay_ms

    def running(self):
        """The version offers and manifests are judged against: the running app's, never
        below the floor persisted at the last confirmed activation (a port that cannot
        read its version, None, is judged at the floor)."""
        v = self.port.running_version()
        floor = self.state.get("floor", 0)
        return floor if v is None or v < floor else v

    # --- query --------------------------------------------------------------------------

    def query(self):
        b = self.port.board
        p = zcl_client.encode_query_next_image_req(
            self.policy.mfr, self.policy.image_type, self.running(), b["hw_version"]
        )
        self._qseq = self._send(zcl_client.QUERY_NEXT_IMAGE_REQ, p)
        if self.st in (IDLE, QUERY):
            self.st = QUERY
            self._due = self.port.ticks_ms() + self.cfg["retry_s"] * 1000

    def on_notify(self, n, unicast):
        if self.st == SCHED and unicast:
            return self._resend_end()  # scheduled: answer with the image it waits to activate
        if self.st not in (IDLE, QUERY):
            return
        if not unicast:
            _kind, jitter, mfr, itype, ver = n  # ImageNotify (records: otaclient.record)
            if mfr is not None and mfr != self.policy.mfr:
                return
            if itype is not None and itype != self.policy.image_type:
                return
            if ver is not None and ver == self.running():
                return
            if random.getrandbits(8) % 100 >= jitter:
                return  # thinned by the server's query jitter
        self.query()

    def on_query_rsp(self, r, seq=None):
        if self.st != QUERY:
            return
        if seq is not None and self._qseq is not None and seq != self._qseq:
            return  # the answer to an earlier query, overtaken on the line: wait for ours
        if r[zcl_client.Q_STATUS] != zcl_client.SUCCESS:
            self._goto(IDLE, self.cfg["query_interval_s"] * 1000)
            return
        failed, refused = self.state.get("failed", []), self.state.get("refused", ())
        locked = self.policy.locked or self.state.get("locked")
        if locked:  # fails closed: no default stands in for unreadable security state
            self.policy.locked = locked
            self.log("ota: updates refused: %s (re-provision the board)" % locked)
        if not self.policy.offer_ok(r, self.running(), failed, refused, self.port.now()):
            self.log("ota: offer %04x/%04x v%08x size %d ignored" % r[zcl_client.Q_MFR :])
            self._goto(IDLE, self.cfg["query_interval_s"] * 1000)
            return
        self._start(r)

    # --- fetch --------------------------------------------------------------------------

    def _start(self, offer):
        self._ver = v = self._verifier
        # an uncompressed chunk waits in the write buffer until it hashed to its link
        v.reset(self.policy.lookup_key, self._sink, self._check, MAX_FILE, self.reasm.buf)
        self._keys = None
        self.dl = self._download
        # the head alone first (header, manifest, signature): authenticated from poll(),
        # with the call chain of the frames let go, before any payload byte is asked for
        self.dl.reset(self._send, offer, v.feed, self.cfg)
        self._goto(FETCH)
        self.dl.start(self.port.ticks_ms(), SIGNED_END + SIG_SIZE)

    def _check(self, header, m):
        if header[H_TOTAL_SIZE] != self.dl.offer[zcl_client.Q_SIZE]:  # truncated or padded: refuse
            raise PolicyError("SIZE_MISMATCH")
        sc = self.state.get("sec_counter", 0)
        self.policy.check(m, self.dl.offer, self.running(), sc)
        if m[M_TYPE] == KEYS_IMAGE_TYPE:
            if m[M_COUNT] != 1 or m[M_TOTAL] > _KEYS_MAX:
                raise PolicyError("BAD_FRAGMENT")
            self._keys = bytearray()
        elif not self.reasm.begin(m):
            raise PolicyError("STAGED")  # not a refusal: on_block skips the rest

    def _sink(self, off, mv):
        if self._keys is None:
            self.reasm.sink(off, mv)
        else:
            self._keys.extend(mv)

    def on_block(self, r):
        if self.st != FETCH:
            return
        try:
            self.dl.on_block(r, self.port.ticks_ms())
        except (image.ImageError, PolicyError) as e:
            if e.code == "STAGED":  # check(): this fragment is already staged
                self.log("ota: fragment already staged")
                return self._fragment_done(self.reasm.complete())
            return self._refuse(e.code)
        if self.on_boundary:
            self.on_boundary(self)
        if self.dl.state == download.ABANDONED:
            self._after(self.dl.state)
        # DONE, PAUSED: the fragment's end, or its head's signature check, is settled by
        # poll(), which the agent calls once this frame is handled: its block and frame
        # are let go by then

    def _after(self, st):
        if st == download.PAUSED:
            # the head is in: a capped or backed-off file goes no further (no verify, no
            # write); else its signatures, with the idle write buffer as P-256's scratch
            v = self._ver
            now = self.port.ticks_ms()
            if self.dl.offset < v.auth_at:  # a supplier signature follows: fetch it too
                return self.dl.start(now, v.auth_at)
            why = self.policy.failures(self.state.get("bad", ()), v.head_id, self.port.now())
            if why:
                return self._refuse(why)
            try:  # the supplier's first: a head that fails either is not authenticated
                scratch = self.reasm.scratch()
                self.policy.check_supplier(v, scratch)
                v.authenticate(scratch)
            except (image.ImageError, PolicyError) as e:
                return self._refuse(e.code)
            self.dl.start(now)
        elif st == download.DONE:
            self._finish()
        elif st == download.ABANDONED:
            self.log("ota: transfer abandoned at %d" % self.dl.offset)
            self.reasm.abort()
            if self.dl.discarded:
                self.reasm.discarded()
            self._drop(IDLE, self.cfg["retry_s"] * 1000)

    def _drop(self, st, delay_ms):
        self.dl = self._ver = self._keys = None
        self._verifier.reset(None, None)
        self._goto(st, delay_ms)

    def _finish(self):
        try:
            m = self._ver.finish()
            if self._keys is not None:
                self.policy.apply_keys(self._keys, m)
                return self._end_req(zcl_client.SUCCESS, QUERY)  # keys in: anything more?
            # the verifier lets go of its hashes, key and header before the progress record
            # is written: opening that file needs a few hundred bytes in one piece
            self._ver = None
            self._verifier.reset(None, None)
            complete = self.reasm.finish(m)
        except (image.ImageError, PolicyError) as e:
            return self._refuse(e.code)
        if complete is None:  # a proof pass (reassembly.begin): verified, nothing written
            self.log("ota: newer fragment verified before it overwrites staged ones: again")
            return self._start(self.dl.offer)
        self._fragment_done(complete)

    def _fragment_done(self, complete):
        if self.on_boundary:
            self.on_boundary(self)
        if self.on_fragment:
            self.on_fragment(self)
        if not complete:
            return self._end_req(zcl_client.REQUIRE_MORE_IMAGE, QUERY)
        try:
            self.reasm.verify_slot()
        except ValueError as e:  # PolicyError SLOT_DIGEST, or port.check_app
            self.log("ota: staged slot refused: %s" % e)
            self.reasm.cancel()
            return self._end_req(zcl_client.INVALID_IMAGE, IDLE)
        self.ended = self.dl.offer
        self._end_req(zcl_client.SUCCESS, END)

    def _refuse(self, code):
        self.log("ota: image refused: %s" % code)
        v = self._ver
        if v is not None and v.head_id is not None and code not in ("CAPPED", "BACKOFF"):
            # a file whose head came whole failed: one more failure of that head. After
            # its authentication, persisted (the head is a signed file's, so a hostile CH
            # has few to cycle); before it, held in RAM only, so that forged heads cost no
            # store write either (written with agent.json's next update, if one comes)
            bad = self.policy.failures(self.state.get("bad", ()), v.head_id, self.port.now(), 1)
            if v.authenticated:
                self.state.update(bad=bad)
            else:
                self.state.data["bad"] = bad
        self.reasm.abort()
        self._end_req(zcl_client.INVALID_IMAGE, IDLE)

    def _end_req(self, status, then):
        o = self.dl.offer
        self._send(
            zcl_client.UPGRADE_END_REQ,
            zcl_client.encode_upgrade_end_req(status, *o[zcl_client.Q_MFR : zcl_client.Q_SIZE]),
        )
        self._drop(then, self.cfg["retry_s"] * 1000)
        if then == QUERY:
            self.query()

    # --- end and activation -------------------------------------------------------------

    def _resend_end(self):
        o = self.ended
        self._send(
            zcl_client.UPGRADE_END_REQ,
            zcl_client.encode_upgrade_end_req(
                zcl_client.SUCCESS, *o[zcl_client.Q_MFR : zcl_client.Q_SIZE]
            ),
        )

    def on_end_rsp(self, r):
        o = self.ended
        if o is None or self.st not in (END, WAIT, SCHED):
            return
        mfr, itype, ver, current, upgrade = r  # UpgradeEndRsp
        if (
            mfr != o[zcl_client.Q_MFR]
            or itype != o[zcl_client.Q_TYPE]
            or ver != o[zcl_client.Q_VERSION]
        ):
            self.log("ota: upgrade end response for another image ignored")
            return
        if upgrade == _NEVER:
            return self._goto(WAIT, self.cfg["wait_poll_s"] * 1000)
        # ZCL: upgradeTime is read against the currentTime of the same response (0: it is
        # a delay in seconds), never against the board's own clock, which an ESP32 starts
        # at 2000 after power-on; a set currentTime also sets that clock (alerts, consent)
        if current:
            self.port.set_now(current)
        delay = upgrade if current == 0 else upgrade - current
        at = self.port.now() + max(0, delay)  # in the past: activate now
        if self.st == SCHED:  # a re-read moves it closer, never away (a CH answering every
            at = min(at, self.activate_at)  # request "in N s" would postpone it forever)
        self.activate_at = at
        self._goto(SCHED, self.cfg["query_interval_s"] * 1000)

    def on_default_rsp(self, r):
        cmd, status = r  # DefaultRsp
        if cmd == zcl_client.IMAGE_PAGE_REQ and self.st == FETCH and status != zcl_client.SUCCESS:
            self.log("ota: no page requests here, using block requests")
            self.dl.no_pages(self.port.ticks_ms())

    def poll(self):
        """Timers; call often. The agent sleeps at most until due()."""
        now = self.port.ticks_ms()
        if self.st == FETCH:
            return self._after(self.dl.poll(now))
        if self.st == SCHED:
            if self.port.now() >= self.activate_at and self.on_activate:
                return self.on_activate(self)
            if ticks_diff(now, self._due) >= 0:  # a long wait is re-read from the CH's time
                self._due = now + self.cfg["query_interval_s"] * 1000
                self._resend_end()
            return
        if ticks_diff(now, self._due) < 0:
            return
        self._tries += 1
        self._due = now + self.cfg["retry_s"] * 1000
        if self.st in (END, WAIT):
            if self.st == WAIT:
                self._due = now + self.cfg["wait_poll_s"] * 1000
            self._resend_end()
        elif self.st == QUERY and self._tries > 3:
            self._goto(IDLE, self.cfg["query_interval_s"] * 1000)
        else:
            self.query()

    def due(self):
        if self.st == FETCH:
            return self.dl.due()
        if self.st == SCHED:
            return self.port.ticks_ms() + 1000
        return self._due
