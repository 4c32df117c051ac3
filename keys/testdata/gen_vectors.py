#!/usr/bin/python3
"""Regenerates testdata/responses/*.txt with Debian's python3-signedjson
(an implementation independent of ours). Run from keys/:
    /usr/bin/python3 testdata/gen_vectors.py
Each file: "expect: <class>" and "server: <name>" header lines, then the
response body. Classes: ok, malformed, too-large, wrong-server, self-signature.
"""
import base64, copy, os
from canonicaljson import encode_canonical_json
from signedjson.key import decode_signing_key_base64, encode_verify_key_base64
from signedjson.sign import sign_json

def key(version, seed):
    return decode_signing_key_base64("ed25519", version, seed)

# The spec's test key (FACTS 2.2) and two more fixed seeds.
K1 = key("1", "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1")
K2 = key("2", base64.b64encode(bytes([2] * 32)).decode().rstrip("="))
OLD = key("old", base64.b64encode(bytes([4] * 32)).decode().rstrip("="))

def pub(k):
    return encode_verify_key_base64(k.verify_key)

def base(*ks, server="example.org"):
    return {
        "server_name": server,
        "valid_until_ts": 1652262000000,
        "verify_keys": {"ed25519:" + k.version: {"key": pub(k)} for k in ks},
        "old_verify_keys": {"ed25519:old": {"expired_ts": 1532645052628, "key": pub(OLD)}},
    }

def signed(obj, *ks, server="example.org"):
    obj = copy.deepcopy(obj)
    for k in ks:
        obj = sign_json(obj, server, k)
    return encode_canonical_json(obj).decode()

out = {}
def put(name, expect, body, server="example.org"):
    out[name] = "expect: %s\nserver: %s\n%s" % (expect, server, body)

put("ok-basic", "ok", signed(base(K1), K1))
put("ok-two-keys", "ok", signed(base(K1, K2), K1, K2))
o = base(K1); o["verify_keys"]["curve25519:x"] = {"key": "AAAA"}
put("ok-unknown-algorithm", "ok", signed(o, K1))
o = base(K1); del o["old_verify_keys"]
put("ok-no-old-keys", "ok", signed(o, K1))
o = base(K1); o["unsigned"] = {"note": "not covered"}
put("ok-unsigned-ignored", "ok", signed(o, K1))
put("any-server", "ok", signed(base(K1), K1), server="")

put("wrong-server", "wrong-server", signed(base(K1), K1), server="other.org")
put("signed-by-old-key-only", "self-signature", signed(base(K1), OLD))
put("one-of-two-signed", "self-signature", signed(base(K1, K2), K1))
s = signed(base(K1), K1).replace("1652262000000", "1652262000001")
put("tampered", "self-signature", s)
put("signed-as-other-entity", "self-signature", signed(base(K1), K1, server="other.org").replace('"server_name":"other.org"', '"server_name":"example.org"'))
o = base(K1)
put("no-signatures", "self-signature", encode_canonical_json(o).decode())

o = base(K1)
for i in range(100):
    o["verify_keys"]["ed25519:k%d" % i] = {"key": pub(K2)}
put("too-many-verify-keys", "too-large", signed(o, K1))
o = base(K1)
for i in range(1000):
    o["old_verify_keys"]["ed25519:o%d" % i] = {"expired_ts": i, "key": pub(OLD)}
put("thousands-of-old-keys", "too-large", signed(o, K1))

def mal(name, mutate):
    o = base(K1)
    mutate(o)
    put(name, "malformed", signed(o, K1))
mal("key-wrong-length", lambda o: o["verify_keys"].__setitem__("ed25519:1", {"key": base64.b64encode(b"x" * 31).decode().rstrip("=")}))
mal("key-bad-base64", lambda o: o["verify_keys"]["ed25519:1"].__setitem__("key", "!!not base64!!"))
mal("key-not-string", lambda o: o["verify_keys"]["ed25519:1"].__setitem__("key", 12))
mal("bad-key-id", lambda o: o["verify_keys"].__setitem__("ed25519:a-b", {"key": pub(K2)}))
mal("empty-key-version", lambda o: o["verify_keys"].__setitem__("ed25519:", {"key": pub(K2)}))
mal("missing-valid-until", lambda o: o.pop("valid_until_ts"))
mal("string-valid-until", lambda o: o.__setitem__("valid_until_ts", "1652262000000"))
mal("missing-verify-keys", lambda o: o.pop("verify_keys"))
mal("verify-keys-array", lambda o: o.__setitem__("verify_keys", []))
mal("missing-server-name", lambda o: o.pop("server_name"))
mal("old-key-missing-expired", lambda o: o["old_verify_keys"]["ed25519:old"].pop("expired_ts"))
mal("old-key-same-id-different-key", lambda o: o["old_verify_keys"].__setitem__("ed25519:1", {"expired_ts": 1, "key": pub(K2)}))
mal("only-unknown-algorithm", lambda o: o.__setitem__("verify_keys", {"curve25519:x": {"key": "AAAA"}}))
s = signed(base(K1), K1)
put("float-valid-until", "malformed", s.replace("1652262000000", "1.652262e12"))
put("duplicate-server-name", "malformed", s.replace('{"old_verify_keys"', '{"server_name":"evil.org","old_verify_keys"', 1))
put("not-an-object", "malformed", "[]")
put("truncated", "malformed", s[:-3])
put("empty", "malformed", "")

d = os.path.join(os.path.dirname(os.path.abspath(__file__)), "responses")
for name, text in out.items():
    with open(os.path.join(d, name + ".txt"), "w") as f:
        f.write(text)
print(len(out), "vectors")
