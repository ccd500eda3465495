"""Signed activation alerts (GBCS CS09-like, ACTIVATION_ALERT): one per served supplier.

Builds, signs (device key, p256) and re-sends each alert, backing off, until the CH
acknowledges its counter; the records live in agent.json so they survive resets.
It decides nothing.
"""

import hashlib
from binascii import hexlify, unhexlify

from micropython import const

from otaclient import zcl_client
from otaclient.image import p256_call

try:
    from time import ticks_diff
except ImportError:

    def ticks_diff(a, b):
        return a - b


_CEILING = const(64)  # the longest wait between re-sends, in alert_retry_s
# an alert record (a list in agent.json): supplier, version, result, timestamp, counter,
# signature (hex; None until signed)
_COUNTER = const(4)
_SIG = const(5)


class Alerts:
    def __init__(self, port, policy, state, send):
        self.port = port
        self.policy = policy
        self.state = state
        self._send = send  # send(cmd, payload, mfr)
        self._due = {}  # counter -> [ticks of the next (re)send, the wait after it]
        self.sent = 0
        self._unsigned = True  # records may wait for a signature (queued before a reset)

    def queue(self, version, result, **fields):
        """A record per served supplier, persisted with any other agent.json fields in one
        put, then sent until acknowledged. Signed at the next poll(), not here: queue()
        runs in activation code (at boot, or when an upgrade time comes), and P-256 needs
        the room that code holds: sign once it is let go. RFC 6979 signs the same
        either way, and a reset before then signs it after the next boot. The agent's
        boot signs right after that code is let go (sign_pending), before it announces."""
        counter = self.state.get("alert_counter", 0)
        if version is None:  # the running version is unknown (a stock ESP32 build)
            version = 0xFFFFFFFF
        now = self.port.now()
        recs = []
        for supplier in self.policy.suppliers or ["-"]:
            counter += 1
            recs.append([supplier, version, result, now, counter, None])
        self.state.update(alerts=self.pending() + recs, alert_counter=counter, **fields)
        self._unsigned = True

    def sign_pending(self, scratch=None):
        """Sign and persist the records queue() left unsigned (one put, if any). `scratch`:
        an idle buffer of >= 258 bytes P-256 may work in (the agent's boot lends the flash
        write buffer: no mid-size block taken from a heap the boot has cut up)."""
        recs = self.pending()
        todo = [r for r in recs if r[_SIG] is None]
        for r in todo:
            body = zcl_client.encode_activation_alert(
                zcl_client.ALERT_CODE_ACTIVATION, *r[:_SIG], None
            )
            r[_SIG] = hexlify(self._sign(body, scratch)).decode()
        if todo:
            self.state.update(alerts=recs)
        self._unsigned = False

    def _sign(self, body, scratch):
        key = self.policy.device_key
        if key is None:
            return bytes(64)  # unprovisioned board: the CH will reject the signature
        msg = zcl_client.alert_signed_bytes(self.policy.eui64, body)
        return p256_call("sign", key, hashlib.sha256(msg).digest(), scratch)

    def pending(self):
        return list(self.state.get("alerts", []))

    def on_ack(self, ack):
        # reached only through agent.on_frame: from the bound CH and, on a board with a
        # CH link key, sealed in this session (a spoofed or replayed ack deletes nothing)
        (counter,) = ack  # AlertAck
        left = [r for r in self.pending() if r[_COUNTER] != counter]
        if len(left) != len(self.pending()):
            self.state.update(alerts=left)
        self._due.pop(counter, None)

    def poll(self):
        """Sign what waits, (re)send what is due; False once none is left to send."""
        if self._unsigned:
            self.sign_pending()
        now = self.port.ticks_ms()
        stagger = self.policy.cfg["alert_stagger_s"] * 1000
        retry = self.policy.cfg["alert_retry_s"] * 1000
        recs = self.pending()
        for i, r in enumerate(recs):
            d = self._due.get(r[_COUNTER])
            if d is None:  # R3: the suppliers' alerts staggered
                d = self._due[r[_COUNTER]] = [now + i * stagger, retry]
            if ticks_diff(now, d[0]) >= 0:
                self._send_one(r)
                # a CH that never acknowledges (one without our manufacturer frames) costs
                # ever less airtime: the wait doubles up to 64 times alert_retry_s (16 min
                # at 15 s), where a CH that does acknowledge still gets every alert
                d[0] = now + d[1]
                d[1] = min(d[1] * 2, retry * _CEILING)
        return bool(recs)

    def _send_one(self, r):
        supplier, version, result, ts, counter, sig = r
        p = zcl_client.encode_activation_alert(
            zcl_client.ALERT_CODE_ACTIVATION, supplier, version, result, ts, counter, unhexlify(sig)
        )
        self._send(zcl_client.ACTIVATION_ALERT, p, zcl_client.MFR_HANOTA)
        self.sent += 1
