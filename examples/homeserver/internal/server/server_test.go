package server_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/server"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/testclient"
)

func start(t *testing.T, dir string) *server.Server {
	t.Helper()
	s, err := server.Start(server.Config{DataDir: dir, ClientAddr: "127.0.0.1:0", FederationAddr: "127.0.0.1:0",
		ServerName: "test.local", BcryptCost: 4, NoRateLimits: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func client(s *server.Server) *testclient.Client {
	return &testclient.Client{Base: "http://" + s.ClientAddr()}
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func register(t *testing.T, s *server.Server, name string) *testclient.Client {
	t.Helper()
	c := client(s)
	if err := c.Register(name, "secret-"+name); err != nil {
		t.Fatal(err)
	}
	return c
}

func path(roomID string) string { return "/rooms/" + url.PathEscape(roomID) }

// TestFlow drives the whole client flow over HTTP: two users, a room, an
// invite, a join, messages, sync for both and pagination back.
func TestFlow(t *testing.T) {
	s := start(t, t.TempDir())
	defer s.Close()
	alice, bob := register(t, s, "alice"), register(t, s, "bob")
	ok := must[map[string]any](t)

	who := ok(alice.MustOK("GET", "/account/whoami", nil))
	if who["user_id"] != "@alice:test.local" {
		t.Fatalf("whoami %v", who)
	}
	ok(alice.MustOK("PUT", "/profile/@alice:test.local/displayname", map[string]string{"displayname": "Alice"}))
	if p := ok(bob.MustOK("GET", "/profile/@alice:test.local", nil)); p["displayname"] != "Alice" {
		t.Fatalf("profile %v", p)
	}
	room := ok(alice.MustOK("POST", "/createRoom", map[string]any{"name": "Flow", "topic": "testing"}))
	roomID := room["room_id"].(string)
	ok(alice.MustOK("POST", path(roomID)+"/invite", map[string]string{"user_id": bob.UserID}))

	// The sync reader applies the invite from the log after the invite
	// request returns: give it a few seconds.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		bobSync := ok(bob.Sync("", 0, 0))
		inv := bobSync["rooms"].(map[string]any)["invite"].(map[string]any)
		if _, found := inv[roomID]; found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bob's sync has no invite after 5 s: %v", bobSync)
		}
	}
	ok(bob.MustOK("POST", path(roomID)+"/join", nil))
	var sent []string
	for i := 0; i < 30; i++ {
		c := alice
		if i%3 == 2 {
			c = bob
		}
		id, err := c.Send(roomID, fmt.Sprintf("txn%d", i), fmt.Sprintf("message %d", i))
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, id)
	}
	// The same transaction ID gives the same event.
	if again := must[string](t)(alice.Send(roomID, "txn0", "message 0")); again != sent[0] {
		t.Fatalf("txn retry gave %s, want %s", again, sent[0])
	}
	for _, c := range []*testclient.Client{alice, bob} {
		ids, _, err := c.CollectMessages(roomID, "", 30, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		// An initial sync shows the last 1000 (here: all) events.
		if strings.Join(ids, ",") != strings.Join(sent, ",") {
			t.Fatalf("%s sees %d messages, want %d in order", c.UserID, len(ids), len(sent))
		}
	}
	// Paginate back 7 at a time with the r0 prefix and the query token.
	r0 := &testclient.Client{Base: alice.Base, Prefix: "/_matrix/client/r0"}
	var back []string
	from := ""
	for page := 0; page < 20; page++ {
		q := url.Values{"dir": {"b"}, "limit": {"7"}, "access_token": {alice.Token}}
		if from != "" {
			q.Set("from", from)
		}
		res := ok(r0.MustOK("GET", path(roomID)+"/messages?"+q.Encode(), nil))
		for _, e := range res["chunk"].([]any) {
			m := e.(map[string]any)
			if m["type"] == "m.room.message" {
				back = append(back, m["event_id"].(string))
			}
		}
		end, more := res["end"].(string)
		if !more {
			break
		}
		from = end
	}
	if len(back) != len(sent) {
		t.Fatalf("paginated %d messages, want %d", len(back), len(sent))
	}
	for i := range sent {
		if back[len(back)-1-i] != sent[i] {
			t.Fatalf("pagination order differs at %d", i)
		}
	}
	// State: the name event is readable, and bob leaves.
	if n := ok(bob.MustOK("GET", path(roomID)+"/state/m.room.name", nil)); n["name"] != "Flow" {
		t.Fatalf("name %v", n)
	}
	ok(bob.MustOK("POST", path(roomID)+"/leave", nil))
	r := must[*testclient.Response](t)(bob.Do("PUT", path(roomID)+"/send/m.room.message/after-leave", map[string]string{"body": "x"}))
	if r.Status != 403 || r.Errcode() != "M_FORBIDDEN" {
		t.Fatalf("send after leave: %d %s", r.Status, r.Raw)
	}
	ok(alice.MustOK("POST", "/logout", nil))
	if r := must[*testclient.Response](t)(alice.Do("GET", "/account/whoami", nil)); r.Errcode() != "M_UNKNOWN_TOKEN" {
		t.Fatalf("after logout: %s", r.Raw)
	}
}

// TestBadInput: each bad request gets its errcode and status, and nothing
// reaches the log.
func TestBadInput(t *testing.T) {
	s := start(t, t.TempDir())
	defer s.Close()
	alice, bob := register(t, s, "alice"), register(t, s, "bob")
	roomID := must[map[string]any](t)(alice.MustOK("POST", "/createRoom", map[string]any{"preset": "public_chat"}))["room_id"].(string)
	must[map[string]any](t)(bob.MustOK("POST", path(roomID)+"/join", nil))
	// The sync reader applies the join from the log after the request
	// returns: wait until the stream position stops moving.
	before := must[map[string]any](t)(alice.Sync("", 0, 0))["next_batch"]
	for deadline := time.Now().Add(5 * time.Second); ; {
		time.Sleep(200 * time.Millisecond)
		now := must[map[string]any](t)(alice.Sync("", 0, 0))["next_batch"]
		if now == before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stream kept moving: %v", now)
		}
		before = now
	}
	anon := client(s)
	big := []byte(`{"body":"` + strings.Repeat("x", 200<<10) + `"}`)
	tests := []struct {
		name    string
		c       *testclient.Client
		method  string
		path    string
		body    any
		status  int
		errcode string
	}{
		{"no token", anon, "GET", "/account/whoami", nil, 401, "M_MISSING_TOKEN"},
		{"bad token", &testclient.Client{Base: alice.Base, Token: "nope"}, "GET", "/account/whoami", nil, 401, "M_UNKNOWN_TOKEN"},
		{"not json", alice, "PUT", path(roomID) + "/send/m.room.message/t1", []byte(`{not json`), 400, "M_NOT_JSON"},
		{"not an object", alice, "PUT", path(roomID) + "/send/m.room.message/t2", []byte(`[1,2]`), 400, "M_BAD_JSON"},
		{"wrong type", alice, "POST", "/createRoom", []byte(`{"name":5}`), 400, "M_BAD_JSON"},
		{"too large", alice, "PUT", path(roomID) + "/send/m.room.message/t3", big, 413, "M_TOO_LARGE"},
		{"unknown room", alice, "PUT", "/rooms/!nope:test.local/send/m.room.message/t4", map[string]string{"body": "x"}, 404, "M_NOT_FOUND"},
		{"too little power", bob, "PUT", path(roomID) + "/state/m.room.name", map[string]string{"name": "bob's"}, 403, "M_FORBIDDEN"},
		{"kick without power", bob, "POST", path(roomID) + "/kick", map[string]string{"user_id": alice.UserID}, 403, "M_FORBIDDEN"},
		{"bad room version", alice, "POST", "/createRoom", map[string]string{"room_version": "99"}, 400, "M_UNSUPPORTED_ROOM_VERSION"},
		{"taken user name", anon, "POST", "/register", map[string]any{"username": "alice", "password": "x", "auth": map[string]string{"type": "m.login.dummy"}}, 400, "M_USER_IN_USE"},
		{"invalid user name", anon, "POST", "/register", map[string]any{"username": "Alice!", "password": "x", "auth": map[string]string{"type": "m.login.dummy"}}, 400, "M_INVALID_USERNAME"},
		{"wrong password", anon, "POST", "/login", map[string]any{"type": "m.login.password", "user": "alice", "password": "wrong"}, 403, "M_FORBIDDEN"},
		{"unknown endpoint", alice, "GET", "/nope", nil, 404, "M_UNRECOGNIZED"},
	}
	for _, tc := range tests {
		r, err := tc.c.Do(tc.method, tc.path, tc.body)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != tc.status || r.Errcode() != tc.errcode {
			t.Errorf("%s: %d %s, want %d %s", tc.name, r.Status, r.Raw, tc.status, tc.errcode)
		}
	}
	// A non-member cannot send either.
	carol := register(t, s, "carol")
	if r := must[*testclient.Response](t)(carol.Do("PUT", path(roomID)+"/send/m.room.message/c1", map[string]string{"body": "x"})); r.Status != 403 {
		t.Errorf("non-member send: %d %s", r.Status, r.Raw)
	}
	time.Sleep(200 * time.Millisecond)
	after := must[map[string]any](t)(alice.Sync("", 0, 0))["next_batch"]
	if before != after {
		t.Fatalf("rejected requests moved the stream from %v to %v", before, after)
	}
}

// TestConcurrentSends: many clients send into one room at once; every
// member sees every accepted event exactly once, in the same order.
func TestConcurrentSends(t *testing.T) {
	s := start(t, t.TempDir())
	defer s.Close()
	owner := register(t, s, "owner")
	roomID := must[map[string]any](t)(owner.MustOK("POST", "/createRoom", map[string]any{"preset": "public_chat"}))["room_id"].(string)
	const clients, each = 8, 15
	cs := make([]*testclient.Client, clients)
	for i := range cs {
		cs[i] = register(t, s, fmt.Sprintf("user%d", i))
		must[map[string]any](t)(cs[i].MustOK("POST", path(roomID)+"/join", nil))
	}
	_, since, err := owner.CollectMessages(roomID, "", 0, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	accepted := make(chan string, clients*each)
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < each; j++ {
				id, err := c.Send(roomID, fmt.Sprintf("t%d", j), fmt.Sprintf("%d/%d", i, j))
				if err != nil {
					t.Error(err)
					return
				}
				accepted <- id
			}
		}()
	}
	wg.Wait()
	close(accepted)
	want := map[string]bool{}
	for id := range accepted {
		want[id] = true
	}
	var orders [][]string
	for _, c := range []*testclient.Client{owner, cs[0], cs[clients-1]} {
		ids, _, err := c.CollectMessages(roomID, since, len(want), 20*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, id := range ids {
			if seen[id] || !want[id] {
				t.Fatalf("%s: duplicate or unknown event %s", c.UserID, id)
			}
			seen[id] = true
		}
		if len(seen) != len(want) {
			t.Fatalf("%s saw %d of %d events", c.UserID, len(seen), len(want))
		}
		orders = append(orders, ids)
	}
	for _, o := range orders[1:] {
		if strings.Join(o, ",") != strings.Join(orders[0], ",") {
			t.Fatal("members see different orders")
		}
	}
}

// TestRestart: stop the server between writes and start it again on the
// same data folder: every acknowledged event is still there and sync
// continues from the old token without gaps or duplicates.
func TestRestart(t *testing.T) {
	dir := t.TempDir()
	s := start(t, dir)
	alice := register(t, s, "alice")
	roomID := must[map[string]any](t)(alice.MustOK("POST", "/createRoom", nil))["room_id"].(string)
	var sent []string
	for i := 0; i < 10; i++ {
		sent = append(sent, must[string](t)(alice.Send(roomID, fmt.Sprintf("a%d", i), "before")))
	}
	ids, since, err := alice.CollectMessages(roomID, "", 10, 10*time.Second)
	if err != nil || len(ids) != 10 {
		t.Fatalf("before restart: %d %v", len(ids), err)
	}
	s.Close()

	s = start(t, dir)
	defer s.Close()
	alice.Base = "http://" + s.ClientAddr()
	if _, err := alice.MustOK("GET", "/account/whoami", nil); err != nil {
		t.Fatalf("token lost: %v", err)
	}
	for i := 0; i < 10; i++ {
		sent = append(sent, must[string](t)(alice.Send(roomID, fmt.Sprintf("b%d", i), "after")))
	}
	more, _, err := alice.CollectMessages(roomID, since, 10, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	all := append(ids, more...)
	if strings.Join(all, ",") != strings.Join(sent, ",") {
		t.Fatalf("after restart: saw %d events, want %d in order", len(all), len(sent))
	}
	// A fresh sync sees all 20 too.
	fresh, _, err := alice.CollectMessages(roomID, "", 20, 10*time.Second)
	if err != nil || strings.Join(fresh, ",") != strings.Join(sent, ",") {
		t.Fatalf("fresh sync: %d events, %v", len(fresh), err)
	}
}
