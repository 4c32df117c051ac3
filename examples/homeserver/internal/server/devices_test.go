package server_test

import (
	"net/url"
	"testing"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/testclient"
)

// TestDevicesAndKeys: device management with user-interactive auth for
// deletion, key upload/query/claim (one-time keys once each, then the
// fallback key), key counts and device list changes in /sync, and
// /keys/changes.
func TestDevicesAndKeys(t *testing.T) {
	s, alice, bob, roomID := aliceAndBobInRoom(t)
	defer s.Close()
	ok := must[map[string]any](t)
	aliceDev := ok(alice.MustOK("GET", "/account/whoami", nil))["device_id"].(string)
	bobSince := syncUntil(t, bob, "", func(m map[string]any) bool { return len(roomPart(m, roomID, "timeline")) > 0 })["next_batch"].(string)

	devs := ok(alice.MustOK("GET", "/devices", nil))["devices"].([]any)
	if len(devs) != 1 || devs[0].(map[string]any)["device_id"] != aliceDev {
		t.Fatalf("devices: %v", devs)
	}
	ok(alice.MustOK("PUT", "/devices/"+aliceDev, map[string]any{"display_name": "laptop"}))
	if d := ok(alice.MustOK("GET", "/devices/"+aliceDev, nil)); d["display_name"] != "laptop" {
		t.Fatalf("device: %v", d)
	}

	deviceKeys := map[string]any{"user_id": alice.UserID, "device_id": aliceDev, "algorithms": []string{"m.olm.v1.curve25519-aes-sha2"},
		"keys": map[string]string{"curve25519:" + aliceDev: "c", "ed25519:" + aliceDev: "e"}, "signatures": map[string]any{}}
	up := ok(alice.MustOK("POST", "/keys/upload", map[string]any{"device_keys": deviceKeys,
		"one_time_keys": map[string]any{"signed_curve25519:A": map[string]any{"key": "k1"}, "signed_curve25519:B": map[string]any{"key": "k2"}},
		"fallback_keys": map[string]any{"signed_curve25519:F": map[string]any{"key": "fb", "fallback": true}}}))
	if jsonString(up) != `{"one_time_key_counts":{"signed_curve25519":2}}` {
		t.Fatalf("upload: %v", up)
	}
	sy := ok(alice.MustOK("GET", "/sync", nil))
	if jsonString(sy["device_one_time_keys_count"]) != `{"signed_curve25519":2}` || jsonString(sy["device_unused_fallback_key_types"]) != `["signed_curve25519"]` {
		t.Fatalf("sync key counts: %v %v", sy["device_one_time_keys_count"], sy["device_unused_fallback_key_types"])
	}
	// Bob learns that alice's devices changed, and queries them.
	got := syncUntil(t, bob, bobSince, func(m map[string]any) bool {
		dl, _ := m["device_lists"].(map[string]any)
		return jsonString(dl["changed"]) == `["`+alice.UserID+`"]`
	})
	ch := ok(bob.MustOK("GET", "/keys/changes?from="+url.QueryEscape(bobSince)+"&to="+url.QueryEscape(got["next_batch"].(string)), nil))
	if jsonString(ch["changed"]) != `["`+alice.UserID+`"]` {
		t.Fatalf("keys/changes: %v", ch)
	}
	q := ok(bob.MustOK("POST", "/keys/query", map[string]any{"device_keys": map[string]any{alice.UserID: []string{}}}))
	dk := q["device_keys"].(map[string]any)[alice.UserID].(map[string]any)[aliceDev].(map[string]any)
	if dk["unsigned"].(map[string]any)["device_display_name"] != "laptop" || dk["keys"].(map[string]any)["ed25519:"+aliceDev] != "e" {
		t.Fatalf("keys/query: %v", dk)
	}
	// Claims: two one-time keys, each once, in upload order; then the
	// fallback key, again and again.
	claim := func() string {
		c := ok(bob.MustOK("POST", "/keys/claim", map[string]any{"one_time_keys": map[string]any{alice.UserID: map[string]string{aliceDev: "signed_curve25519"}}}))
		return jsonString(c["one_time_keys"])
	}
	seen := map[string]bool{}
	for i := 0; i < 2; i++ {
		c := claim()
		if seen[c] {
			t.Fatalf("one-time key handed out twice: %s", c)
		}
		seen[c] = true
	}
	fb := `{"` + alice.UserID + `":{"` + aliceDev + `":{"signed_curve25519:F":{"fallback":true,"key":"fb"}}}}`
	if c := claim(); c != fb {
		t.Fatalf("third claim: %s, want the fallback key", c)
	}
	if c := claim(); c != fb {
		t.Fatalf("fourth claim: %s, want the fallback key again", c)
	}
	sy = ok(alice.MustOK("GET", "/sync", nil))
	if jsonString(sy["device_one_time_keys_count"]) != `{}` || jsonString(sy["device_unused_fallback_key_types"]) != `[]` {
		t.Fatalf("after claims: %v %v", sy["device_one_time_keys_count"], sy["device_unused_fallback_key_types"])
	}

	// Bad input.
	for _, tc := range []struct {
		c       *testclient.Client
		m, p    string
		body    any
		status  int
		errcode string
	}{
		{alice, "POST", "/keys/upload", map[string]any{"device_keys": map[string]any{"user_id": bob.UserID, "device_id": aliceDev}}, 400, "M_INVALID_PARAM"},
		{alice, "POST", "/keys/upload", map[string]any{"one_time_keys": map[string]any{"nocolon": "x"}}, 400, "M_INVALID_PARAM"},
		{alice, "POST", "/keys/query", map[string]any{}, 400, "M_MISSING_PARAM"},
		{alice, "POST", "/keys/claim", map[string]any{"one_time_keys": 3}, 400, "M_BAD_JSON"},
		{alice, "GET", "/keys/changes?from=x&to=y", nil, 400, "M_INVALID_PARAM"},
		{alice, "GET", "/devices/NOPE", nil, 404, "M_NOT_FOUND"},
		{bob, "PUT", "/devices/" + aliceDev, map[string]any{"display_name": "mine"}, 404, "M_NOT_FOUND"},
		{alice, "GET", "/room_keys/version", nil, 404, "M_NOT_FOUND"},
	} {
		r := must[*testclient.Response](t)(tc.c.Do(tc.m, tc.p, tc.body))
		if r.Status != tc.status || r.Errcode() != tc.errcode {
			t.Errorf("%s %s: %d %s, want %d %s", tc.m, tc.p, r.Status, r.Raw, tc.status, tc.errcode)
		}
	}

	// Deleting a device: 401 with flows, 401 with a wrong password, then
	// done; its token stops working.
	second := &testclient.Client{Base: alice.Base}
	login := ok(second.MustOK("POST", "/login", map[string]any{"type": "m.login.password", "user": "alice", "password": "secret-alice"}))
	second.Token = login["access_token"].(string)
	dev2 := login["device_id"].(string)
	r := must[*testclient.Response](t)(alice.Do("DELETE", "/devices/"+dev2, map[string]any{}))
	if r.Status != 401 || jsonString(r.Body["flows"]) != `[{"stages":["m.login.password"]}]` {
		t.Fatalf("delete without auth: %d %s", r.Status, r.Raw)
	}
	r = must[*testclient.Response](t)(alice.Do("DELETE", "/devices/"+dev2, map[string]any{"auth": map[string]any{"type": "m.login.password", "user": "alice", "password": "wrong"}}))
	if r.Status != 401 || r.Errcode() != "M_FORBIDDEN" {
		t.Fatalf("delete with a wrong password: %d %s", r.Status, r.Raw)
	}
	if _, err := second.MustOK("GET", "/account/whoami", nil); err != nil {
		t.Fatalf("device deleted by a failed attempt: %v", err)
	}
	ok(alice.MustOK("DELETE", "/devices/"+dev2, map[string]any{"auth": map[string]any{"type": "m.login.password",
		"identifier": map[string]string{"type": "m.id.user", "user": "alice"}, "password": "secret-alice"}}))
	if r := must[*testclient.Response](t)(second.Do("GET", "/account/whoami", nil)); r.Errcode() != "M_UNKNOWN_TOKEN" {
		t.Fatalf("deleted device's token: %d %s", r.Status, r.Raw)
	}
}

// TestClientStartup: what matrix-js-sdk needs before its first sync: the
// default push rules, capabilities with room versions, versions, TURN
// and third-party answers of a server without them, room members.
func TestClientStartup(t *testing.T) {
	s := start(t, t.TempDir())
	defer s.Close()
	ok := must[map[string]any](t)
	alice := register(t, s, "alice")
	pr := ok(alice.MustOK("GET", "/pushrules/", nil))["global"].(map[string]any)
	override := pr["override"].([]any)
	if override[0].(map[string]any)["rule_id"] != ".m.rule.master" || len(override) != 12 || len(pr["underride"].([]any)) != 5 {
		t.Fatalf("push rules: %s", jsonString(pr))
	}
	if c := pr["content"].([]any)[0].(map[string]any); c["pattern"] != "alice" {
		t.Fatalf("content rule: %v", c)
	}
	if g := ok(alice.MustOK("GET", "/pushrules/global/", nil)); g["override"] == nil {
		t.Fatalf("pushrules/global/: %v", g)
	}
	caps := ok(alice.MustOK("GET", "/capabilities", nil))["capabilities"].(map[string]any)
	rv := caps["m.room_versions"].(map[string]any)
	if rv["default"] != "12" || rv["available"].(map[string]any)["10"] != "stable" {
		t.Fatalf("capabilities: %v", caps)
	}
	v := &testclient.Client{Base: alice.Base, Prefix: "/_matrix/client"}
	if vs := ok(v.MustOK("GET", "/versions", nil)); vs["unstable_features"] == nil {
		t.Fatalf("versions: %v", vs)
	}
	if r := ok(alice.MustOK("GET", "/voip/turnServer", nil)); len(r) != 0 {
		t.Fatalf("turnServer: %v", r)
	}
	if r := ok(alice.MustOK("GET", "/thirdparty/protocols", nil)); len(r) != 0 {
		t.Fatalf("thirdparty: %v", r)
	}
	roomID := ok(alice.MustOK("POST", "/createRoom", nil))["room_id"].(string)
	if ch := ok(alice.MustOK("GET", path(roomID)+"/members?not_membership=leave", nil))["chunk"].([]any); len(ch) != 1 {
		t.Fatalf("members: %v", ch)
	}
}
