package server_test

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/clientapi"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/server"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/testclient"
)

func startWith(t *testing.T, cfg server.Config) *server.Server {
	t.Helper()
	cfg.DataDir, cfg.ClientAddr, cfg.FederationAddr, cfg.ServerName, cfg.BcryptCost = t.TempDir(), "127.0.0.1:0", "127.0.0.1:0", "test.local", 4
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := server.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRegistrationModes: token registration (m.login.registration_token,
// the validity endpoint), closed registration, and user name errors
// before user-interactive auth.
func TestRegistrationModes(t *testing.T) {
	s := startWith(t, server.Config{Registration: "token", RegistrationTokens: []string{"tok-1"}, NoRateLimits: true})
	defer s.Close()
	anon := &testclient.Client{Base: "http://" + s.ClientAddr()}
	body := func(auth any) map[string]any {
		return map[string]any{"username": "carol", "password": "pw", "auth": auth}
	}
	r := must[*testclient.Response](t)(anon.Do("POST", "/register", body(nil)))
	if r.Status != 401 || jsonString(r.Body["flows"]) != `[{"stages":["m.login.registration_token"]}]` {
		t.Fatalf("no auth: %d %s", r.Status, r.Raw)
	}
	r = must[*testclient.Response](t)(anon.Do("POST", "/register", body(map[string]any{"type": "m.login.dummy"})))
	if r.Status != 401 {
		t.Fatalf("dummy stage on a token server: %d %s", r.Status, r.Raw)
	}
	r = must[*testclient.Response](t)(anon.Do("POST", "/register", body(map[string]any{"type": "m.login.registration_token", "token": "wrong"})))
	if r.Status != 401 || r.Errcode() != "M_FORBIDDEN" {
		t.Fatalf("wrong token: %d %s", r.Status, r.Raw)
	}
	v1 := &testclient.Client{Base: anon.Base, Prefix: "/_matrix/client/v1"}
	for tok, want := range map[string]bool{"tok-1": true, "wrong": false, "bad token!": false} {
		got := must[map[string]any](t)(v1.MustOK("GET", "/register/m.login.registration_token/validity?token="+strings.ReplaceAll(tok, " ", "%20"), nil))
		if got["valid"] != want {
			t.Errorf("validity of %q: %v", tok, got)
		}
	}
	must[map[string]any](t)(anon.MustOK("POST", "/register", body(map[string]any{"type": "m.login.registration_token", "token": "tok-1"})))
	// A taken user name is reported before auth.
	r = must[*testclient.Response](t)(anon.Do("POST", "/register", body(nil)))
	if r.Status != 400 || r.Errcode() != "M_USER_IN_USE" {
		t.Fatalf("taken name without auth: %d %s", r.Status, r.Raw)
	}

	closed := startWith(t, server.Config{Registration: "closed", NoRateLimits: true})
	defer closed.Close()
	c := &testclient.Client{Base: "http://" + closed.ClientAddr()}
	if r := must[*testclient.Response](t)(c.Do("POST", "/register", body(map[string]any{"type": "m.login.dummy"}))); r.Status != 403 || r.Errcode() != "M_FORBIDDEN" {
		t.Fatalf("closed registration: %d %s", r.Status, r.Raw)
	}
}

// TestRateLimits: over the limit, login and sends get 429
// M_LIMIT_EXCEEDED with retry_after_ms and a Retry-After header, and
// nothing is stored.
func TestRateLimits(t *testing.T) {
	s := startWith(t, server.Config{RateLimits: &clientapi.RateLimits{
		Login: clientapi.RateLimit{PerSecond: 0.01, Burst: 2}, Register: clientapi.RateLimit{PerSecond: 0.01, Burst: 3},
		Send: clientapi.RateLimit{PerSecond: 0.01, Burst: 3}}})
	defer s.Close()
	alice := register(t, s, "alice")
	roomID := must[map[string]any](t)(alice.MustOK("POST", "/createRoom", nil))["room_id"].(string)
	for i := 0; i < 3; i++ {
		must[string](t)(alice.Send(roomID, "t"+string(rune('a'+i)), "ok"))
	}
	req, _ := http.NewRequest("PUT", alice.Base+"/_matrix/client/v3"+path(roomID)+"/send/m.room.message/over", strings.NewReader(`{"body":"over"}`))
	req.Header.Set("Authorization", "Bearer "+alice.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 429 || !strings.Contains(string(b), `"errcode":"M_LIMIT_EXCEEDED"`) || !strings.Contains(string(b), `"retry_after_ms":`) || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("send over the limit: %d %v %s", resp.StatusCode, resp.Header, b)
	}
	if n := messageBodies(t, alice, roomID)["over"]; n != 0 {
		t.Fatal("a rate-limited send was stored")
	}
	anon := &testclient.Client{Base: alice.Base}
	login := map[string]any{"type": "m.login.password", "user": "alice", "password": "secret-alice"}
	for i := 0; i < 2; i++ {
		must[map[string]any](t)(anon.MustOK("POST", "/login", login))
	}
	if r := must[*testclient.Response](t)(anon.Do("POST", "/login", login)); r.Status != 429 || r.Errcode() != "M_LIMIT_EXCEEDED" {
		t.Fatalf("login over the limit: %d %s", r.Status, r.Raw)
	}
}
