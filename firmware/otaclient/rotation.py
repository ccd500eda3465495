"""Key rotation: a verified 0xFFC0 payload applied to the board's key sets, kept in keys.json.

Loaded for one rotation image and let go after (policy.apply_keys); it checks no signature
(the verifier did, with the authority key policy.check required) and never touches flash.
"""

import hashlib
from binascii import hexlify

from micropython import const

from otaclient.imagefmt import M_SHA256, M_VERSION, key_id
from otaclient.policy import PolicyError
from otaclient.state import KEYS, save_json

_REC = const(65)  # op u8 || X (32) || Y (32)
_MAX_RECS = const(16)  # client._KEYS_MAX / 65
# ops: 1 add anchor, 2 revoke anchor, 3 add authority, 4 revoke authority


def _norm(keys):
    out = {}
    for kid in keys:
        out["%08x" % int(kid, 16)] = keys[kid]
    return out


def apply(store, data, m, sets):
    """`sets`: (counter, anchors, authority) now (policy._sets). The sets after the
    payload's records, in order, are saved with the image's counter in one put; refused
    (PolicyError, nothing saved) if they would leave no anchor, no authority key, or one
    key in both roles."""
    counter, anchors, auth = sets
    n = len(data)
    if not 0 < n <= _MAX_RECS * _REC or n % _REC or hashlib.sha256(data).digest() != m[M_SHA256]:
        raise PolicyError("BAD_KEYS")
    if m[M_VERSION] != counter + 1:  # policy.check refused it already: the persisting step
        raise PolicyError("ROTATION_COUNTER")
    anchors, auth = _norm(anchors), _norm(auth)
    for i in range(0, n, _REC):
        op = data[i]
        if not 1 <= op <= 4:
            raise PolicyError("BAD_KEYS")
        pub = bytes(data[i + 1 : i + _REC])
        kid = "%08x" % key_id(pub)
        keys = anchors if op <= 2 else auth
        if op & 1:
            keys[kid] = hexlify(pub).decode()
        else:
            keys.pop(kid, None)  # revoking a key the board does not hold changes nothing
    if not anchors:
        raise PolicyError("LAST_ANCHOR")  # no image could ever be accepted again
    if not auth:
        raise PolicyError("LAST_AUTHORITY")  # no key set could ever be changed again
    for kid in auth:
        if kid in anchors:
            raise PolicyError("KEY_ROLE")  # an image-signing key must not rotate keys
    save_json(store, KEYS, {"counter": m[M_VERSION], "anchors": anchors, "authority": auth})
