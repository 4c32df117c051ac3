package server_test

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/server"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/testclient"
)

// Tests of issue #21 part b: the device and key lifecycle, push rules and
// media limits.

func startWithB(t *testing.T, cfg server.Config) *server.Server {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	cfg.ClientAddr, cfg.FederationAddr, cfg.ServerName, cfg.BcryptCost = "127.0.0.1:0", "127.0.0.1:0", "test.local", 4
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.NoRateLimits = true
	s, err := server.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// expect checks a response's status and errcode ("" for none), and that
// no request answers 500.
func expectB(t *testing.T, r *testclient.Response, err error, status int, errcode string) *testclient.Response {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != status || (errcode != "" && r.Errcode() != errcode) {
		t.Fatalf("got %d %s, want %d %s", r.Status, r.Raw, status, errcode)
	}
	return r
}

// joinedRoom makes alice create a room that bob joins.
func joinedRoomB(t *testing.T, alice, bob *testclient.Client, body map[string]any) string {
	t.Helper()
	ok := must[map[string]any](t)
	roomID := ok(alice.MustOK("POST", "/createRoom", body))["room_id"].(string)
	ok(alice.MustOK("POST", path(roomID)+"/invite", map[string]string{"user_id": bob.UserID}))
	ok(bob.MustOK("POST", path(roomID)+"/join", map[string]any{}))
	return roomID
}

func deviceKeysB(userID, deviceID string) map[string]any {
	return map[string]any{
		"user_id": userID, "device_id": deviceID,
		"algorithms": []string{"m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"},
		"keys":       map[string]string{"curve25519:" + deviceID: "curve-" + deviceID, "ed25519:" + deviceID: "ed-" + deviceID},
		"signatures": map[string]any{userID: map[string]string{"ed25519:" + deviceID: "sig-" + deviceID}},
	}
}

// syncUntil syncs from since until cond holds for a response, with a deadline.
func syncUntilB(t *testing.T, c *testclient.Client, since string, cond func(map[string]any) bool) map[string]any {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		s := must[map[string]any](t)(c.Sync(since, 500*time.Millisecond, 0))
		if cond(s) {
			return s
		}
	}
	t.Fatalf("sync condition not met before the deadline")
	return nil
}

func hasStringB(v any, s string) bool {
	list, _ := v.([]any)
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestDeviceKeyLifecycle(t *testing.T) {
	s := startWithB(t, server.Config{})
	alice, bob := register(t, s, "alice"), register(t, s, "bob")
	ok := must[map[string]any](t)
	aliceDev := ok(alice.MustOK("GET", "/account/whoami", nil))["device_id"].(string)
	login := ok(client(s).MustOK("POST", "/login", map[string]any{"type": "m.login.password", "user": "alice", "password": "secret-alice", "device_id": "PHONE"}))
	phone := client(s)
	phone.Token, phone.UserID = login["access_token"].(string), "@alice:test.local"
	roomID := joinedRoomB(t, alice, bob, map[string]any{})
	_ = roomID

	// Devices.
	devs := ok(alice.MustOK("GET", "/devices", nil))["devices"].([]any)
	if len(devs) != 2 {
		t.Fatalf("devices %v", devs)
	}
	ok(phone.MustOK("GET", "/account/whoami", nil))
	ok(alice.MustOK("PUT", "/devices/PHONE", map[string]any{"display_name": "Alice's phone"}))
	if d := ok(alice.MustOK("GET", "/devices/PHONE", nil)); d["display_name"] != "Alice's phone" || d["last_seen_ts"] == nil {
		t.Fatalf("device %v", d)
	}
	r, err := bob.Do("GET", "/devices/PHONE", nil)
	expectB(t, r, err, 404, "M_NOT_FOUND")
	r, err = bob.Do("PUT", "/devices/PHONE", map[string]any{"display_name": "stolen"})
	expectB(t, r, err, 404, "M_NOT_FOUND")
	r, err = alice.Do("PUT", "/devices/PHONE", map[string]any{"display_name": 5})
	expectB(t, r, err, 400, "M_BAD_JSON")

	// Keys: a bad upload stores nothing.
	r, err = alice.Do("POST", "/keys/upload", map[string]any{"device_keys": deviceKeysB("@bob:test.local", aliceDev)})
	expectB(t, r, err, 400, "M_INVALID_PARAM")
	r, err = alice.Do("POST", "/keys/upload", map[string]any{"device_keys": deviceKeysB(alice.UserID, aliceDev), "one_time_keys": "nope"})
	expectB(t, r, err, 400, "M_BAD_JSON")
	r, err = alice.Do("POST", "/keys/upload", map[string]any{"one_time_keys": map[string]any{"nocolon": "k"}})
	expectB(t, r, err, 400, "M_INVALID_PARAM")
	// A good key next to a bad one is not stored either.
	r, err = alice.Do("POST", "/keys/upload", map[string]any{"one_time_keys": map[string]any{"signed_curve25519:good": map[string]any{"key": "g"}, "nocolon": "k"},
		"fallback_keys": map[string]any{"signed_curve25519:fb0": map[string]any{"key": "f"}}})
	expectB(t, r, err, 400, "M_INVALID_PARAM")
	if c := must[map[string]any](t)(alice.Sync("", 0, 0)); len(c["device_one_time_keys_count"].(map[string]any)) != 0 || len(c["device_unused_fallback_key_types"].([]any)) != 0 {
		t.Fatalf("a refused upload stored keys: %v %v", c["device_one_time_keys_count"], c["device_unused_fallback_key_types"])
	}
	q := ok(bob.MustOK("POST", "/keys/query", map[string]any{"device_keys": map[string]any{alice.UserID: []string{}}}))
	if n := len(q["device_keys"].(map[string]any)[alice.UserID].(map[string]any)); n != 0 {
		t.Fatalf("keys stored by a bad upload: %v", q)
	}

	first := ok(bob.Sync("", 0, 0))["next_batch"].(string)
	otks := map[string]any{}
	for i := range 3 {
		otks[fmt.Sprintf("signed_curve25519:k%d", i)] = map[string]any{"key": fmt.Sprintf("otk%d", i), "signatures": map[string]any{}}
	}
	up := ok(alice.MustOK("POST", "/keys/upload", map[string]any{"device_keys": deviceKeysB(alice.UserID, aliceDev), "one_time_keys": otks,
		"fallback_keys": map[string]any{"signed_curve25519:fb": map[string]any{"key": "fallback", "fallback": true}}}))
	if up["one_time_key_counts"].(map[string]any)["signed_curve25519"] != float64(3) {
		t.Fatalf("upload %v", up)
	}
	as := ok(alice.Sync("", 0, 0))
	if as["device_one_time_keys_count"].(map[string]any)["signed_curve25519"] != float64(3) || !hasStringB(as["device_unused_fallback_key_types"], "signed_curve25519") {
		t.Fatalf("alice's sync key counts %v %v", as["device_one_time_keys_count"], as["device_unused_fallback_key_types"])
	}
	// Bob's incremental sync names alice in device_lists.changed, and so
	// does /keys/changes over the same tokens.
	bs := syncUntilB(t, bob, first, func(s map[string]any) bool {
		dl, _ := s["device_lists"].(map[string]any)
		return hasStringB(dl["changed"], alice.UserID)
	})
	ch := ok(bob.MustOK("GET", "/keys/changes?"+url.Values{"from": {first}, "to": {bs["next_batch"].(string)}}.Encode(), nil))
	if !hasStringB(ch["changed"], alice.UserID) {
		t.Fatalf("keys/changes %v", ch)
	}
	// /messages takes the sync token too.
	ok(bob.MustOK("GET", path(roomID)+"/messages?"+url.Values{"from": {bs["next_batch"].(string)}, "dir": {"b"}}.Encode(), nil))

	q = ok(bob.MustOK("POST", "/keys/query", map[string]any{"device_keys": map[string]any{alice.UserID: []string{}, "@nobody:test.local": []string{}, "@x:elsewhere.example": []string{}}}))
	ak := q["device_keys"].(map[string]any)[alice.UserID].(map[string]any)
	if _, found := ak[aliceDev]; !found || len(ak) != 1 {
		t.Fatalf("query %v", q)
	}

	// Claims: each one-time key once, then the fallback key, again and again.
	seen := map[string]bool{}
	for i := range 5 {
		c := ok(bob.MustOK("POST", "/keys/claim", map[string]any{"one_time_keys": map[string]any{alice.UserID: map[string]string{aliceDev: "signed_curve25519", "NODEVICE": "signed_curve25519"}}}))
		got := c["one_time_keys"].(map[string]any)[alice.UserID].(map[string]any)
		if _, found := got["NODEVICE"]; found || len(got) != 1 {
			t.Fatalf("claim %v", c)
		}
		for k := range got[aliceDev].(map[string]any) {
			if i < 3 && seen[k] || i >= 3 && k != "signed_curve25519:fb" {
				t.Fatalf("claim %d handed out %s (seen %v)", i, k, seen)
			}
			seen[k] = true
		}
	}
	as = ok(alice.Sync("", 0, 0))
	if as["device_one_time_keys_count"].(map[string]any)["signed_curve25519"] != nil || hasStringB(as["device_unused_fallback_key_types"], "signed_curve25519") {
		t.Fatalf("counts after claims %v %v", as["device_one_time_keys_count"], as["device_unused_fallback_key_types"])
	}
	r, err = bob.Do("POST", "/keys/claim", map[string]any{})
	expectB(t, r, err, 400, "M_MISSING_PARAM")
	r, err = bob.Do("POST", "/keys/query", map[string]any{"device_keys": []string{"x"}})
	expectB(t, r, err, 400, "M_BAD_JSON")
	r, err = bob.Do("GET", "/keys/changes?from=s1", nil)
	expectB(t, r, err, 400, "")
	r, err = bob.Do("GET", "/room_keys/version", nil)
	expectB(t, r, err, 404, "M_NOT_FOUND")

	// Deleting a device needs the password.
	ok(phone.MustOK("POST", "/keys/upload", map[string]any{"device_keys": deviceKeysB(alice.UserID, "PHONE")}))
	r, err = alice.Do("DELETE", "/devices/PHONE", map[string]any{})
	expectB(t, r, err, 401, "")
	session, _ := r.Body["session"].(string)
	if session == "" || !strings.Contains(string(r.Raw), "m.login.password") {
		t.Fatalf("challenge %s", r.Raw)
	}
	r, err = alice.Do("DELETE", "/devices/PHONE", map[string]any{"auth": map[string]any{"type": "m.login.password", "session": session,
		"identifier": map[string]string{"type": "m.id.user", "user": "alice"}, "password": "wrong"}})
	expectB(t, r, err, 401, "M_FORBIDDEN")
	r, err = bob.Do("DELETE", "/devices/PHONE", map[string]any{"auth": map[string]any{"type": "m.login.password", "user": "alice", "password": "secret-alice"}})
	expectB(t, r, err, 401, "M_FORBIDDEN") // bob cannot use alice's password for his own request
	ok(phone.MustOK("GET", "/account/whoami", nil))
	r, err = alice.Do("POST", "/delete_devices", map[string]any{"auth": map[string]any{}})
	expectB(t, r, err, 400, "M_MISSING_PARAM")
	ok(alice.MustOK("DELETE", "/devices/PHONE", map[string]any{"auth": map[string]any{"type": "m.login.password", "session": session,
		"identifier": map[string]string{"type": "m.id.user", "user": "alice"}, "password": "secret-alice"}}))
	r, err = phone.Do("GET", "/account/whoami", nil)
	expectB(t, r, err, 401, "M_UNKNOWN_TOKEN")
	if devs := ok(alice.MustOK("GET", "/devices", nil))["devices"].([]any); len(devs) != 1 {
		t.Fatalf("devices after delete %v", devs)
	}
	q = ok(bob.MustOK("POST", "/keys/query", map[string]any{"device_keys": map[string]any{alice.UserID: []string{"PHONE"}}}))
	if n := len(q["device_keys"].(map[string]any)[alice.UserID].(map[string]any)); n != 0 {
		t.Fatalf("deleted device's keys still served: %v", q)
	}
	// delete_devices with the password and no session; an unknown device is fine.
	ok(alice.MustOK("POST", "/delete_devices", map[string]any{"devices": []string{"GONE"}, "auth": map[string]any{"type": "m.login.password", "user": "@alice:test.local", "password": "secret-alice"}}))
}

func TestPushRules(t *testing.T) {
	s := startWithB(t, server.Config{})
	alice, bob := register(t, s, "alice"), register(t, s, "bob")
	ok := must[map[string]any](t)
	g := ok(alice.MustOK("GET", "/pushrules/", nil))["global"].(map[string]any)
	ids := func(kind string, g map[string]any) []string {
		var out []string
		for _, r := range g[kind].([]any) {
			out = append(out, r.(map[string]any)["rule_id"].(string))
		}
		return out
	}
	over := ids("override", g)
	if len(over) != 12 || over[0] != ".m.rule.master" || over[11] != ".m.rule.suppress_edits" {
		t.Fatalf("override %v", over)
	}
	if u := ids("underride", g); len(u) != 5 || u[0] != ".m.rule.call" || u[4] != ".m.rule.encrypted" {
		t.Fatalf("underride %v", u)
	}
	content := g["content"].([]any)[0].(map[string]any)
	if content["pattern"] != "alice" || content["rule_id"] != ".m.rule.contains_user_name" {
		t.Fatalf("content %v", content)
	}
	if m := g["override"].([]any)[0].(map[string]any); m["enabled"] != false || m["default"] != true {
		t.Fatalf("master %v", m)
	}
	if len(g["room"].([]any)) != 0 || len(g["sender"].([]any)) != 0 {
		t.Fatalf("room/sender %v", g)
	}
	mention := g["override"].([]any)[4].(map[string]any)
	if !strings.Contains(fmt.Sprint(mention["conditions"]), `content.m\.mentions.user_ids`) {
		t.Fatalf("is_user_mention %v", mention)
	}

	rule := map[string]any{"actions": []any{"notify"}, "conditions": []any{map[string]any{"kind": "event_match", "key": "content.body", "pattern": "cake"}}}
	ok(alice.MustOK("PUT", "/pushrules/global/override/cake", rule))
	ok(alice.MustOK("PUT", "/pushrules/global/override/pie?before=cake", rule))
	ok(alice.MustOK("PUT", "/pushrules/global/override/tart?after=cake", rule))
	over = ids("override", ok(alice.MustOK("GET", "/pushrules/global/", nil)))
	if strings.Join(over[:4], " ") != ".m.rule.master pie cake tart" || len(over) != 15 {
		t.Fatalf("order %v", over)
	}
	for _, bad := range []struct {
		path string
		body any
		code string
	}{
		{"/pushrules/global/override/x?before=nope", rule, "M_UNKNOWN"},
		{"/pushrules/global/override/.mine", rule, "M_INVALID_PARAM"},
		{"/pushrules/global/override/x", map[string]any{"conditions": []any{}}, "M_MISSING_PARAM"},
		{"/pushrules/global/override/x", map[string]any{"actions": "notify"}, "M_BAD_JSON"},
		{"/pushrules/global/override/x", map[string]any{"actions": []any{5}}, "M_BAD_JSON"},
		{"/pushrules/global/content/x", map[string]any{"actions": []any{}}, "M_MISSING_PARAM"},
		{"/pushrules/global/room/notaroom", map[string]any{"actions": []any{}}, "M_INVALID_PARAM"},
		{"/pushrules/global/nokind/x", rule, "M_INVALID_PARAM"},
	} {
		r, err := alice.Do("PUT", bad.path, bad.body)
		expectB(t, r, err, 400, bad.code)
	}
	// Changes reach the user's clients as m.push_rules account data.
	syncUntilB(t, alice, "", func(s map[string]any) bool {
		ad, _ := s["account_data"].(map[string]any)
		evs, _ := ad["events"].([]any)
		for _, e := range evs {
			if m := e.(map[string]any); m["type"] == "m.push_rules" && strings.Contains(fmt.Sprint(m["content"]), "tart") {
				return true
			}
		}
		return false
	})
	ok(alice.MustOK("PUT", "/pushrules/global/underride/.m.rule.message/enabled", map[string]any{"enabled": false}))
	ok(alice.MustOK("PUT", "/pushrules/global/underride/.m.rule.message/actions", map[string]any{"actions": []any{}}))
	if e := ok(alice.MustOK("GET", "/pushrules/global/underride/.m.rule.message/enabled", nil)); e["enabled"] != false {
		t.Fatalf("enabled %v", e)
	}
	if a := ok(alice.MustOK("GET", "/pushrules/global/underride/.m.rule.message/actions", nil)); len(a["actions"].([]any)) != 0 {
		t.Fatalf("actions %v", a)
	}
	ok(alice.MustOK("PUT", "/pushrules/global/override/cake/enabled", map[string]any{"enabled": false}))
	if r := ok(alice.MustOK("GET", "/pushrules/global/override/cake", nil)); r["enabled"] != false || r["default"] != false {
		t.Fatalf("cake %v", r)
	}
	// Bob sees only the defaults.
	bg := ok(bob.MustOK("GET", "/pushrules/", nil))["global"].(map[string]any)
	if len(ids("override", bg)) != 12 || bg["underride"].([]any)[3].(map[string]any)["enabled"] != true {
		t.Fatalf("bob's rules %v", bg)
	}
	r, err := bob.Do("GET", "/pushrules/global/override/cake", nil)
	expectB(t, r, err, 404, "M_NOT_FOUND")
	r, err = bob.Do("DELETE", "/pushrules/global/override/cake", nil)
	expectB(t, r, err, 404, "M_NOT_FOUND")
	ok(alice.MustOK("DELETE", "/pushrules/global/override/cake", nil))
	r, err = alice.Do("DELETE", "/pushrules/global/override/.m.rule.master", nil)
	expectB(t, r, err, 403, "M_FORBIDDEN")
	r, err = alice.Do("PUT", "/pushrules/global/override/.m.rule.nope/enabled", map[string]any{"enabled": true})
	expectB(t, r, err, 404, "M_NOT_FOUND")
	r, err = alice.Do("PUT", "/pushrules/global/override/pie/enabled", map[string]any{"enabled": "yes"})
	expectB(t, r, err, 400, "M_BAD_JSON")
}

func testPNGB(t *testing.T, w, h int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for x := range w {
		for y := range h {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), 128, 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func rawRequestB(t *testing.T, method, url, token, contentType string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestMediaLimits(t *testing.T) {
	dir := t.TempDir()
	s := startWithB(t, server.Config{DataDir: dir, MaxUploadBytes: 64 << 10})
	alice := register(t, s, "alice")
	base := "http://" + s.ClientAddr()
	img := testPNGB(t, 200, 100)

	resp, body := rawRequestB(t, "POST", base+"/_matrix/media/v3/upload?filename=pic.png", alice.Token, "image/png", bytes.NewReader(img))
	if resp.StatusCode != 200 {
		t.Fatalf("upload %d %s", resp.StatusCode, body)
	}
	uri := string(body)
	const prefix = `{"content_uri":"mxc://test.local/`
	if !strings.HasPrefix(uri, prefix) {
		t.Fatalf("upload answer %s", uri)
	}
	mediaID := strings.TrimSuffix(strings.TrimSpace(strings.TrimPrefix(uri, prefix)), `"}`)

	// Authenticated download: needs a token.
	resp, body = rawRequestB(t, "GET", base+"/_matrix/client/v1/media/download/test.local/"+mediaID, "", "", nil)
	if resp.StatusCode != 401 {
		t.Fatalf("download without a token: %d", resp.StatusCode)
	}
	for _, u := range []string{base + "/_matrix/client/v1/media/download/test.local/" + mediaID, base + "/_matrix/media/v3/download/test.local/" + mediaID} {
		resp, body = rawRequestB(t, "GET", u, alice.Token, "", nil)
		if resp.StatusCode != 200 || !bytes.Equal(body, img) || resp.Header.Get("Content-Type") != "image/png" ||
			resp.Header.Get("Content-Disposition") != `inline; filename=pic.png` || resp.Header.Get("Content-Security-Policy") == "" {
			t.Fatalf("download %s: %d %v", u, resp.StatusCode, resp.Header)
		}
	}
	resp, _ = rawRequestB(t, "GET", base+"/_matrix/client/v1/media/download/test.local/"+mediaID+"/other.png", alice.Token, "", nil)
	if resp.Header.Get("Content-Disposition") != `inline; filename=other.png` {
		t.Fatalf("download with a file name: %v", resp.Header)
	}
	// Thumbnails.
	for _, tc := range []struct {
		q    string
		w, h int
	}{{"width=50&height=50&method=scale", 50, 25}, {"width=40&height=40&method=crop", 40, 40}, {"width=800&height=600&method=scale", 200, 100}} {
		resp, body = rawRequestB(t, "GET", base+"/_matrix/client/v1/media/thumbnail/test.local/"+mediaID+"?"+tc.q, alice.Token, "", nil)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" {
			t.Fatalf("thumbnail %s: %d %s", tc.q, resp.StatusCode, body)
		}
		cfg, err := png.DecodeConfig(bytes.NewReader(body))
		if err != nil || cfg.Width != tc.w || cfg.Height != tc.h {
			t.Fatalf("thumbnail %s: %v %dx%d", tc.q, err, cfg.Width, cfg.Height)
		}
	}
	// Bad requests.
	text := must[map[string]any](t)(alice.MustOK("GET", "/account/whoami", nil))
	_ = text
	resp, body = rawRequestB(t, "POST", base+"/_matrix/media/v3/upload", alice.Token, "text/plain", strings.NewReader("hello"))
	textID := strings.TrimSuffix(strings.TrimSpace(strings.TrimPrefix(string(body), prefix)), `"}`)
	for _, tc := range []struct {
		url    string
		status int
		code   string
	}{
		{"/_matrix/client/v1/media/thumbnail/test.local/" + textID + "?width=10&height=10", 400, "M_UNKNOWN"},
		{"/_matrix/client/v1/media/thumbnail/test.local/" + mediaID + "?width=ten&height=10", 400, "M_INVALID_PARAM"},
		{"/_matrix/client/v1/media/thumbnail/test.local/" + mediaID + "?width=10&height=10&method=blur", 400, "M_INVALID_PARAM"},
		{"/_matrix/client/v1/media/download/test.local/nosuchmedia", 404, "M_NOT_FOUND"},
		{"/_matrix/client/v1/media/download/test.local/..%2f..%2fhomeserver.db", 400, "M_INVALID_PARAM"},
		{"/_matrix/media/v3/download/test.local/..%2Fsigning.key", 400, "M_INVALID_PARAM"},
		{"/_matrix/client/v1/media/download/other.example/abc", 404, "M_NOT_FOUND"},
	} {
		resp, body = rawRequestB(t, "GET", base+tc.url, alice.Token, "", nil)
		if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.code) || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("%s: %d %s", tc.url, resp.StatusCode, body)
		}
	}
	if resp, body = rawRequestB(t, "GET", base+"/_matrix/client/v1/media/download/test.local/"+textID, alice.Token, "", nil); string(body) != "hello" || !strings.HasPrefix(resp.Header.Get("Content-Disposition"), "inline") {
		t.Fatalf("text download %v %s", resp.Header, body)
	}
	if resp, body = rawRequestB(t, "GET", base+"/_matrix/client/v1/media/config", alice.Token, "", nil); !strings.Contains(string(body), `"m.upload.size":65536`) {
		t.Fatalf("config %s", body)
	}

	// Over the limit: 413 before anything is kept, with and without a
	// declared length.
	files := func() int {
		es, err := os.ReadDir(filepath.Join(dir, "media"))
		if err != nil {
			t.Fatal(err)
		}
		return len(es)
	}
	before := files()
	big := bytes.Repeat([]byte("x"), 65<<10)
	resp, body = rawRequestB(t, "POST", base+"/_matrix/media/v3/upload", alice.Token, "", bytes.NewReader(big))
	if resp.StatusCode != 413 || !strings.Contains(string(body), "M_TOO_LARGE") {
		t.Fatalf("big upload %d %s", resp.StatusCode, body)
	}
	resp, body = rawRequestB(t, "POST", base+"/_matrix/media/v3/upload", alice.Token, "", io.MultiReader(bytes.NewReader(big))) // chunked
	if resp.StatusCode != 413 || !strings.Contains(string(body), "M_TOO_LARGE") {
		t.Fatalf("big chunked upload %d %s", resp.StatusCode, body)
	}
	if files() != before {
		t.Fatalf("an oversized upload left a file")
	}
	resp, _ = rawRequestB(t, "POST", base+"/_matrix/media/v3/upload", "", "", strings.NewReader("x"))
	if resp.StatusCode != 401 {
		t.Fatalf("upload without a token: %d", resp.StatusCode)
	}

	// Asynchronous upload: create, then fill once; another user may not
	// fill it; a pending ID is not served.
	bob := register(t, s, "bob")
	resp, body = rawRequestB(t, "POST", base+"/_matrix/media/v1/create", alice.Token, "", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "unused_expires_at") {
		t.Fatalf("create %d %s", resp.StatusCode, body)
	}
	newID := strings.TrimPrefix(strings.Split(string(body), `"`)[3], "mxc://test.local/")
	if resp, _ = rawRequestB(t, "GET", base+"/_matrix/client/v1/media/download/test.local/"+newID, alice.Token, "", nil); resp.StatusCode != 404 {
		t.Fatalf("pending download %d", resp.StatusCode)
	}
	if resp, body = rawRequestB(t, "PUT", base+"/_matrix/media/v3/upload/test.local/"+newID, bob.Token, "", strings.NewReader("b")); resp.StatusCode != 403 || !strings.Contains(string(body), "M_FORBIDDEN") {
		t.Fatalf("other user's upload %d %s", resp.StatusCode, body)
	}
	if resp, body = rawRequestB(t, "PUT", base+"/_matrix/media/v3/upload/test.local/"+newID, alice.Token, "", bytes.NewReader(big)); resp.StatusCode != 413 {
		t.Fatalf("oversized upload to a created ID %d %s", resp.StatusCode, body)
	}
	if resp, body = rawRequestB(t, "PUT", base+"/_matrix/media/v3/upload/test.local/"+newID+"?filename=late.txt", alice.Token, "text/plain", strings.NewReader("late")); resp.StatusCode != 200 {
		t.Fatalf("upload to created ID %d %s", resp.StatusCode, body)
	}
	if resp, body = rawRequestB(t, "PUT", base+"/_matrix/media/v3/upload/test.local/"+newID, alice.Token, "text/plain", strings.NewReader("again")); resp.StatusCode != 409 || !strings.Contains(string(body), "M_CANNOT_OVERWRITE_MEDIA") {
		t.Fatalf("overwrite %d %s", resp.StatusCode, body)
	}
	if resp, body = rawRequestB(t, "GET", base+"/_matrix/media/v3/download/test.local/"+newID, "", "", nil); string(body) != "late" || resp.Header.Get("Content-Disposition") != "inline; filename=late.txt" {
		t.Fatalf("created media %v %s", resp.Header, body)
	}
	for _, tc := range []struct {
		path   string
		status int
	}{{"/_matrix/media/v3/upload/test.local/nosuchid", 404}, {"/_matrix/media/v3/upload/other.example/" + newID, 404}, {"/_matrix/media/v3/upload/test.local/bad.id", 400}} {
		if resp, body = rawRequestB(t, "PUT", base+tc.path, alice.Token, "", strings.NewReader("x")); resp.StatusCode != tc.status {
			t.Fatalf("%s: %d %s", tc.path, resp.StatusCode, body)
		}
	}
	if files() != before+1 {
		t.Fatalf("files: %d, want %d", files(), before+1)
	}
}

// TestConcurrentClaims claims one device's one-time keys from many
// clients at once, on SQLite and on PostgreSQL: every key is handed out
// at most once.
func TestConcurrentClaims(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			cfg := server.Config{}
			if backend == "postgres" {
				cfg.PostgresDSN = startPostgres(t)
			}
			s := startWithB(t, cfg)
			alice := register(t, s, "alice")
			ok := must[map[string]any](t)
			dev := ok(alice.MustOK("GET", "/account/whoami", nil))["device_id"].(string)
			const keys, claimers = 20, 8
			otks := map[string]any{}
			for i := range keys {
				otks[fmt.Sprintf("signed_curve25519:k%02d", i)] = map[string]any{"key": fmt.Sprint(i)}
			}
			ok(alice.MustOK("POST", "/keys/upload", map[string]any{"one_time_keys": otks}))
			var mu sync.Mutex
			got := map[string]int{}
			var wg sync.WaitGroup
			for c := range claimers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					cl := register(t, s, fmt.Sprintf("claimer%d", c))
					for range keys / claimers * 2 {
						b, err := cl.MustOK("POST", "/keys/claim", map[string]any{"one_time_keys": map[string]any{alice.UserID: map[string]string{dev: "signed_curve25519"}}})
						if err != nil {
							t.Error(err)
							return
						}
						byDev, _ := b["one_time_keys"].(map[string]any)[alice.UserID].(map[string]any)
						k, _ := byDev[dev].(map[string]any)
						mu.Lock()
						for id := range k {
							got[id]++
						}
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			if len(got) != keys {
				t.Errorf("%d distinct keys handed out, want %d", len(got), keys)
			}
			for id, n := range got {
				if n != 1 {
					t.Errorf("key %s handed out %d times", id, n)
				}
			}
		})
	}
}
