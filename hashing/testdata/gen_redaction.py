#!/usr/bin/python3
# Generates testdata/redaction/*.json: one vector per room version per event
# type. The expected output is computed here from the spec's redaction
# rules (FACTS 4.2), independently of the Go roomversion table, so the test
# compares two separate derivations. Run with Debian's /usr/bin/python3.
import json, canonicaljson

TOP_OLD = ["event_id","type","room_id","sender","state_key","content","hashes","signatures","depth","prev_events","prev_state","auth_events","origin","origin_server_ts","membership"]
TOP_NEW = ["event_id","type","room_id","sender","state_key","content","hashes","signatures","depth","prev_events","auth_events","origin_server_ts"]
PL = ["ban","events","events_default","kick","redact","state_default","users","users_default"]

def content_rules(v):
    r = {
        "m.room.member": ["membership"],
        "m.room.create": ["creator"],
        "m.room.join_rules": ["join_rule"],
        "m.room.power_levels": list(PL),
        "m.room.history_visibility": ["history_visibility"],
    }
    if v <= 5: r["m.room.aliases"] = ["aliases"]
    if v >= 8: r["m.room.join_rules"].append("allow")
    if v >= 9: r["m.room.member"].append("join_authorised_via_users_server")
    if v >= 11:
        r["m.room.member"].append("third_party_invite/signed")
        r["m.room.create"] = "ALL"
        r["m.room.power_levels"].append("invite")
        r["m.room.redaction"] = ["redacts"]
    return r

def redact(v, ev):
    top = TOP_OLD if v <= 10 else TOP_NEW
    out = {k: val for k, val in ev.items() if k in top}
    keep = content_rules(v).get(ev.get("type"), [])
    c = ev.get("content", {})
    if keep == "ALL":
        out["content"] = c
    else:
        nc = {}
        for k in keep:
            if "/" in k:
                a, b = k.split("/")
                if isinstance(c.get(a), dict):
                    nc[a] = {b: c[a][b]} if b in c[a] else {}
            elif k in c:
                nc[k] = c[k]
        out["content"] = nc
    return out

base = {"room_id":"!r:example.org","sender":"@alice:example.org","origin":"example.org","origin_server_ts":1700000000000,
        "depth":7,"prev_events":["$p"],"auth_events":["$a"],"hashes":{"sha256":"abc"},"signatures":{"example.org":{"ed25519:1":"sig"}},
        "unsigned":{"age":5},"prev_state":[],"membership":"join","event_id":"$e:example.org","redacts":"$t","extra_top":1}
samples = {
 "member": ("m.room.member", "@bob:example.org", {"membership":"join","displayname":"Bob","avatar_url":"mxc://x/y","join_authorised_via_users_server":"@alice:example.org",
            "third_party_invite":{"display_name":"b...@example.com","signed":{"mxid":"@bob:example.org","token":"t","signatures":{}}}}),
 "member_3pid_without_signed": ("m.room.member", "@bob:example.org", {"membership":"invite","third_party_invite":{"display_name":"x"}}),
 "member_3pid_not_object": ("m.room.member", "@bob:example.org", {"membership":"invite","third_party_invite":"nope"}),
 "create": ("m.room.create", "", {"creator":"@alice:example.org","room_version":"9","m.federate":False,"predecessor":{"room_id":"!old:example.org"},"additional_creators":["@bob:example.org"]}),
 "join_rules": ("m.room.join_rules", "", {"join_rule":"restricted","allow":[{"type":"m.room_membership","room_id":"!s:example.org"}],"extra":1}),
 "power_levels": ("m.room.power_levels", "", {"ban":50,"events":{"m.room.name":50},"events_default":0,"invite":0,"kick":50,"redact":50,"state_default":50,"users":{"@alice:example.org":100},"users_default":0,"notifications":{"room":50},"extra":True}),
 "history_visibility": ("m.room.history_visibility", "", {"history_visibility":"shared","extra":1}),
 "aliases": ("m.room.aliases", "example.org", {"aliases":["#a:example.org"]}),
 "redaction": ("m.room.redaction", None, {"redacts":"$t","reason":"spam"}),
 "message": ("m.room.message", None, {"msgtype":"m.text","body":"hello"}),
 "custom_state": ("com.example.state", "k", {"membership":"join","join_rule":"public"}),
}
for v in range(1, 13):
    for name, (typ, sk, content) in samples.items():
        ev = dict(base, type=typ, content=content)
        if sk is not None: ev["state_key"] = sk
        if v >= 3: ev.pop("event_id")
        exp = canonicaljson.encode_canonical_json(redact(v, ev)).decode()
        with open(f"redaction/v{v:02d}_{name}.json", "w") as f:
            f.write("# expect: redacted\n")
            f.write(json.dumps(ev, ensure_ascii=False) + "\n")
            f.write(exp + "\n")
print("ok")
