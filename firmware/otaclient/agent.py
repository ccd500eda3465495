"""The OTA agent: wires port, link framing, ZCL dispatch, client, alerts; boot and main loop.

R4 lives here: a frame from any node but the bound CH, or (with a CH link key) a command
without a valid MIC in this boot's link session, is answered NOT_AUTHORIZED and goes no
further. It holds no image logic (client.py) and no hardware access (the port).
"""

from binascii import unhexlify
from os import urandom

from micropython import const

from otaclient import let_go, link, zcl_client
from otaclient.client import Client
from otaclient.policy import Policy
from otaclient.state import State, load_json

try:
    from time import ticks_diff
except ImportError:

    def ticks_diff(a, b):
        return a - b


_BROADCAST_MIN = const(0xFFF8)  # 0xFFF8..0xFFFF: broadcast short addresses
_MAX_SLEEP_MS = const(200)
_RESET_AFTER = const(5)  # agent crashes in a row before main() resets the board
_CALM_MS = const(60000)  # an agent that ran this long before crashing starts a new row
_UNKNOWN = const(0xFFFFFFFF)  # announced version of a board that cannot tell its own
_SESSION_MS = const(2000)  # a refused command renews the link session at most this often


class Agent:
    def __init__(self, port):
        self.port = port
        self.policy = Policy(port)
        self.state = State(port.store)
        self.addr = self.policy.short_addr
        self._dec = link.Decoder()
        self._rx = bytearray(384)  # a block's frame (~290 bytes) in one read, little more
        self._lseq = 0
        self._zseq = 0
        self.client = None  # built by boot(), once the boot's alerts are signed
        self.alerts = None  # the Alerts while any is queued or unacknowledged (alerting())
        self.boot_status = None
        self.refused = 0  # frames answered NOT_AUTHORIZED (R4, link MIC)
        self.heap = None
        # the CH link key (None: none provisioned, source address only), this session's
        # nonce, its last accepted counter, when it began (ticks). The key's HMAC pads are
        # made per sealed frame, not held: the boot after an activation has no room for them
        key = load_json(port.store, "identity.json", {}).get("link_key")
        self._key = unhexlify(key) if key else None
        self._nonce = None
        self._ctr = 0
        self._since = 0

    def alerting(self):
        """The Alerts, its module loaded at first use; step() lets both go once every
        alert is acknowledged, so a transfer never holds them (docs/agent.md, Memory)."""
        a = self.alerts
        if a is None:
            from otaclient.alerts import Alerts

            a = self.alerts = Alerts(self.port, self.policy, self.state, self.send)
        return a

    def _activate(self, c):
        _activation().activate_due(self, c)
        let_go("activation")

    # --- output -------------------------------------------------------------------------

    def send(self, cmd, payload, mfr=None, dst=None, seq=None):
        if seq is None:
            self._zseq = (self._zseq + 1) & 0xFF
            seq = self._zseq
        frame = zcl_client.encode_frame(cmd, seq, payload, False, mfr)
        self._lseq = (self._lseq + 1) & 0xFF
        dst = self.policy.ch_addr if dst is None else dst
        self.port.link.write(link.encode(self.addr, dst, self._lseq, frame))
        return seq

    def announce(self, boot_status):
        pol = self.policy
        v = self.port.running_version()
        if v is None:  # a stock build's app descriptor has no version: say so, never 0
            self.port.log("ota: running version unknown")
            v = _UNKNOWN
        p = zcl_client.encode_device_announce(pol.eui64, pol.hw, v, boot_status)
        self.send(zcl_client.DEVICE_ANNOUNCE, p, zcl_client.MFR_HANOTA)

    # --- boot and loop ------------------------------------------------------------------

    def boot(self):
        """Self-test/confirm a trial boot, settle an activation, then report (R7)."""
        # the client's tables and buffers first, while the heap has its larger holes; then
        # the activation's settling and its alerts' signing, which leave it cut up (P-256
        # works in the idle flash write buffer: no mid-size block needed after that)
        c = self.client = Client(self.port, self.policy, self.state, self.send)
        c.on_activate = self._activate
        self.boot_status = _activation().after_boot(self)
        let_go("activation")
        if self.state.get("alerts"):
            self.alerting().sign_pending(c.reasm.scratch())
        if self.policy.cfg["heap_report"]:
            from otaclient import heapreport

            heapreport.attach(c, self.port.log)
            self.heap = heapreport
        # after the client's buffers, which need the larger holes; before the announce,
        # whose answer from the CH is sealed
        if self._key is None:
            self.port.log("ota: WARNING: no CH link key: commands checked by source address only")
        else:
            self._session()
        self.announce(self.boot_status)
        c.query()
        if self.heap:
            self.heap.start()

    def run(self):
        self.boot()
        while True:
            self.step()

    def step(self, max_ms=_MAX_SLEEP_MS):
        """Feed the watchdog, wait for bytes at most until the next timer, handle frames,
        run timers. A loop that stops stepping stops feeding: the board resets."""
        self.port.feed()
        now = self.port.ticks_ms()
        wait = min(max(0, ticks_diff(self.client.due(), now)), max_ms)
        n = self.port.link.readinto(self._rx, wait)
        if n:
            self._dec.feed(self._rx, n)  # no copies: each frame is handled before the next
            while True:
                f = self._dec.next(True)
                if f is None:
                    break
                self.on_frame(*f)
        self.client.poll()
        a = self.alerts
        if a is not None and not a.poll():  # every alert acknowledged
            self.alerts = None
            let_go("alerts")

    # --- dispatch -----------------------------------------------------------------------

    def on_frame(self, src, dst, lseq, payload):
        unicast = dst == self.addr
        if not unicast and dst < _BROADCAST_MIN:
            return  # for another node
        try:
            cmd, seq, s2c, mfr, p = zcl_client.decode_frame(payload)
        except zcl_client.ZclError as e:
            return self._default(src, 0xFF, 0, e.status, unicast)
        n = self._sealed(src, dst, cmd, s2c, payload)
        if n < 0:
            self.refused += 1
            return self._default(src, cmd, seq, zcl_client.NOT_AUTHORIZED, unicast)
        if n:
            p = p[: len(p) - n]  # the ZCL payload, without counter and MIC
        try:
            obj = zcl_client.decode_received(cmd, p, s2c, mfr)
        except zcl_client.ZclError as e:
            return self._default(src, cmd, seq, e.status, unicast)
        self._route(src, cmd, seq, s2c, obj, unicast)

    def _sealed(self, src, dst, cmd, s2c, payload):
        """How many bytes of link security end the payload (0 or SEC_LEN), or -1 if the
        frame may not act: not from the bound CH (R4), or, with a link key, a command
        whose MIC fails or whose counter is not above the last one of this session. An
        Image Block Response is not sealed: its data is checked by the image's signed
        hash chain (docs/security.md)."""
        why = None
        if not self.policy.from_ch(src):
            why = "not the bound CH"
        elif self._key is None or (s2c and cmd == zcl_client.IMAGE_BLOCK_RSP):
            return 0
        else:
            c = link.unseal(link.pads(self._key), self._nonce, src, dst, payload)
            if c > self._ctr:
                self._ctr = c
                return link.SEC_LEN
            why = "bad MIC" if c < 0 else "replayed"
            self._session()
        self.port.log("ota: command %02x from %04x refused (%s)" % (cmd, src, why))
        return -1

    def _session(self):
        """A new link session: a fresh nonce, counters from 1, told to the CH. A sealed
        frame of an earlier session (or boot) no longer verifies. At most one per
        _SESSION_MS: a CH that lost the nonce gets a new one, a forger cannot make the
        board talk without pause."""
        now = self.port.ticks_ms()
        if self._nonce is not None and ticks_diff(now, self._since) < _SESSION_MS:
            return
        self._since = now
        self._nonce = urandom(link.NONCE_LEN)
        self._ctr = 0
        self.send(zcl_client.LINK_SESSION, self._nonce, zcl_client.MFR_HANOTA)

    def _route(self, src, cmd, seq, s2c, obj, unicast):
        c = self.client
        if not s2c and cmd != zcl_client.DEFAULT_RSP:
            return self._default(src, cmd, seq, zcl_client.UNSUP_CLUSTER_COMMAND, unicast)
        if cmd == zcl_client.IMAGE_BLOCK_RSP:
            c.on_block(obj)
        elif cmd == zcl_client.IMAGE_NOTIFY:
            c.on_notify(obj, unicast)
        elif cmd == zcl_client.QUERY_NEXT_IMAGE_RSP:
            c.on_query_rsp(obj, seq)
        elif cmd == zcl_client.UPGRADE_END_RSP:
            c.on_end_rsp(obj)
        elif cmd == zcl_client.ALERT_ACK:
            if self.alerts is not None:  # else nothing is pending: nothing to delete
                self.alerts.on_ack(obj)
        elif cmd == zcl_client.DEFAULT_RSP:
            c.on_default_rsp(obj)
        else:
            self._default(src, cmd, seq, zcl_client.UNSUP_CLUSTER_COMMAND, unicast)

    def _default(self, src, cmd, seq, status, unicast):
        if unicast:  # never answer a broadcast (no storms)
            p = zcl_client.encode_default_rsp(cmd, status)
            self.send(zcl_client.DEFAULT_RSP, p, None, src, seq)


def _activation():
    # boot and activation code runs at boot and when an upgrade time comes, never during
    # a transfer: imported for the call, let go after, so a transfer never holds it
    from otaclient import activation

    return activation


def main(port, make_agent=Agent):
    """Run the agent forever. A crash is logged and the agent restarted after a back-off
    (1, 2, 4, 8 s); the fifth crash in a row (each within a minute of its start) resets
    the board instead: a heap the crashed agent left cut up may not fit a new one, and a
    trial boot that keeps crashing is then rolled back by the bootloader."""
    crashes = 0
    while True:
        start = port.ticks_ms()
        try:
            make_agent(port).run()
        except Exception as e:  # top level: the device must keep answering the CH
            crashes = 1 if ticks_diff(port.ticks_ms(), start) > _CALM_MS else crashes + 1
            backoff = 1000 << (crashes - 1)
            try:  # the report needs heap too: after a MemoryError there may be none
                port.log("agent: crashed: %r; restart in %d ms" % (e, backoff))
                _trace(port, e)
            except MemoryError:
                pass
            e = None  # the exception holds its traceback's frames: let them go
            if crashes >= _RESET_AFTER:
                port.log("agent: %d crashes in a row: reset" % crashes)
                port.reset()
            port.sleep_ms(backoff)


def _trace(port, e):
    # where it crashed, on the console (MicroPython: sys.print_exception)
    import sys

    if hasattr(sys, "print_exception"):
        import io

        out = io.StringIO()
        sys.print_exception(e, out)
        port.log(out.getvalue().rstrip())
