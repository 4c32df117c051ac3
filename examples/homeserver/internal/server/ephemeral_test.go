package server_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/server"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/testclient"
)

// syncUntil long-polls /sync from since until cond holds for a response
// (or 10 s pass) and returns that response.
func syncUntil(t *testing.T, c *testclient.Client, since string, cond func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		q := url.Values{"timeout": {"2000"}}
		if since != "" {
			q.Set("since", since)
		}
		s := must[map[string]any](t)(c.MustOK("GET", "/sync?"+q.Encode(), nil))
		if cond(s) {
			return s
		}
		since = s["next_batch"].(string)
	}
	t.Fatalf("%s: condition not met within 10 s", c.UserID)
	return nil
}

func roomPart(s map[string]any, roomID, part string) []any {
	rooms, _ := s["rooms"].(map[string]any)
	join, _ := rooms["join"].(map[string]any)
	room, _ := join[roomID].(map[string]any)
	p, _ := room[part].(map[string]any)
	evs, _ := p["events"].([]any)
	return evs
}

func topPart(s map[string]any, part string) []any {
	p, _ := s[part].(map[string]any)
	evs, _ := p["events"].([]any)
	return evs
}

func ofType(evs []any, typ string) map[string]any {
	for _, e := range evs {
		if m, _ := e.(map[string]any); m["type"] == typ {
			return m
		}
	}
	return nil
}

// aliceAndBobInRoom starts a server with two users, alice and bob, both
// joined to a public room alice created.
func aliceAndBobInRoom(t *testing.T) (s *server.Server, alice, bob *testclient.Client, roomID string) {
	t.Helper()
	s = start(t, t.TempDir())
	ok := must[map[string]any](t)
	alice, bob = register(t, s, "alice"), register(t, s, "bob")
	roomID = ok(alice.MustOK("POST", "/createRoom", map[string]any{"preset": "public_chat"}))["room_id"].(string)
	ok(bob.MustOK("POST", path(roomID)+"/join", nil))
	return s, alice, bob, roomID
}

func jsonString(v any) string { b, _ := json.Marshal(v); return string(b) }

// TestEphemeralStreams: typing, receipts (public, private, threaded), read
// markers, account data, presence and to-device messages go through their
// logs and reach the right users through /sync, resumed by one token.
func TestEphemeralStreams(t *testing.T) {
	s, alice, bob, roomID := aliceAndBobInRoom(t)
	defer s.Close()
	ok := must[map[string]any](t)
	msgID := must[string](t)(alice.Send(roomID, "m1", "hello"))
	bobSince := syncUntil(t, bob, "", func(m map[string]any) bool { return findEvent(roomPart(m, roomID, "timeline"), msgID) != nil })["next_batch"].(string)
	aliceSince := ok(alice.MustOK("GET", "/sync", nil))["next_batch"].(string)

	// Typing: bob's long-poll wakes with alice typing, then with nobody.
	ok(alice.MustOK("PUT", path(roomID)+"/typing/"+alice.UserID, map[string]any{"typing": true, "timeout": 30000}))
	got := syncUntil(t, bob, bobSince, func(m map[string]any) bool { return ofType(roomPart(m, roomID, "ephemeral"), "m.typing") != nil })
	if ids := jsonString(ofType(roomPart(got, roomID, "ephemeral"), "m.typing")["content"]); ids != `{"user_ids":["`+alice.UserID+`"]}` {
		t.Fatalf("typing: %s", ids)
	}
	bobSince = got["next_batch"].(string)
	ok(alice.MustOK("PUT", path(roomID)+"/typing/"+alice.UserID, map[string]any{"typing": false}))
	got = syncUntil(t, bob, bobSince, func(m map[string]any) bool { return ofType(roomPart(m, roomID, "ephemeral"), "m.typing") != nil })
	if ids := jsonString(ofType(roomPart(got, roomID, "ephemeral"), "m.typing")["content"]); ids != `{"user_ids":[]}` {
		t.Fatalf("typing stopped: %s", ids)
	}
	bobSince = got["next_batch"].(string)
	// Typing for another user or in a room one is not in: refused.
	if r := must[*testclient.Response](t)(bob.Do("PUT", path(roomID)+"/typing/"+alice.UserID, map[string]any{"typing": true})); r.Status != 403 {
		t.Fatalf("typing as another user: %d %s", r.Status, r.Raw)
	}

	// Receipts: public (threaded too) seen by bob, private only by alice.
	ok(alice.MustOK("POST", path(roomID)+"/receipt/m.read/"+msgID, map[string]any{}))
	ok(alice.MustOK("POST", path(roomID)+"/receipt/m.read/"+msgID, map[string]any{"thread_id": "main"}))
	ok(alice.MustOK("POST", path(roomID)+"/receipt/m.read.private/"+msgID, map[string]any{}))
	got = syncUntil(t, bob, bobSince, func(m map[string]any) bool {
		r := ofType(roomPart(m, roomID, "ephemeral"), "m.receipt")
		return r != nil && jsonString(r) != "null"
	})
	rc := jsonString(ofType(roomPart(got, roomID, "ephemeral"), "m.receipt")["content"])
	if want := fmt.Sprintf(`"m.read":{"%s":{"thread_id":"main"`, alice.UserID); !contains(rc, want) {
		t.Fatalf("bob's receipts %s lack %s", rc, want)
	}
	if contains(rc, "m.read.private") {
		t.Fatalf("bob sees alice's private receipt: %s", rc)
	}
	bobSince = got["next_batch"].(string)
	got = syncUntil(t, alice, aliceSince, func(m map[string]any) bool {
		r := ofType(roomPart(m, roomID, "ephemeral"), "m.receipt")
		return r != nil && contains(jsonString(r), "m.read.private")
	})
	aliceSince = got["next_batch"].(string)
	for _, bad := range []string{"/receipt/m.bogus/" + msgID, "/receipt/m.read/$nope"} {
		if r := must[*testclient.Response](t)(alice.Do("POST", path(roomID)+bad, map[string]any{})); r.Status != 400 && r.Status != 404 {
			t.Fatalf("POST %s: %d %s", bad, r.Status, r.Raw)
		}
	}

	// Read markers: m.fully_read lands in alice's room account data.
	ok(alice.MustOK("POST", path(roomID)+"/read_markers", map[string]any{"m.fully_read": msgID, "m.read": msgID}))
	got = syncUntil(t, alice, aliceSince, func(m map[string]any) bool { return ofType(roomPart(m, roomID, "account_data"), "m.fully_read") != nil })
	if c := jsonString(ofType(roomPart(got, roomID, "account_data"), "m.fully_read")["content"]); c != `{"event_id":"`+msgID+`"}` {
		t.Fatalf("m.fully_read: %s", c)
	}
	aliceSince = got["next_batch"].(string)

	// Account data, global and per room.
	ok(alice.MustOK("PUT", "/user/"+alice.UserID+"/account_data/m.direct", map[string]any{bob.UserID: []string{roomID}}))
	ok(alice.MustOK("PUT", "/user/"+alice.UserID+"/rooms/"+url.PathEscape(roomID)+"/account_data/m.tag", map[string]any{"tags": map[string]any{"u.work": map[string]any{}}}))
	if d := ok(alice.MustOK("GET", "/user/"+alice.UserID+"/account_data/m.direct", nil)); jsonString(d) != `{"`+bob.UserID+`":["`+roomID+`"]}` {
		t.Fatalf("GET m.direct: %v", d)
	}
	got = syncUntil(t, alice, aliceSince, func(m map[string]any) bool {
		return ofType(topPart(m, "account_data"), "m.direct") != nil && ofType(roomPart(m, roomID, "account_data"), "m.tag") != nil
	})
	aliceSince = got["next_batch"].(string)
	for _, tc := range []struct {
		c       *testclient.Client
		method  string
		path    string
		body    any
		status  int
		errcode string
	}{
		{bob, "GET", "/user/" + alice.UserID + "/account_data/m.direct", nil, 403, "M_FORBIDDEN"},
		{alice, "GET", "/user/" + alice.UserID + "/account_data/m.nothing", nil, 404, "M_NOT_FOUND"},
		{alice, "PUT", "/user/" + alice.UserID + "/account_data/m.fully_read", map[string]any{}, 405, "M_BAD_JSON"},
		{alice, "PUT", "/user/" + alice.UserID + "/account_data/x", []byte(`[1]`), 400, "M_BAD_JSON"},
		{alice, "PUT", "/presence/" + alice.UserID + "/status", map[string]any{"presence": "dancing"}, 400, "M_INVALID_PARAM"},
		{bob, "PUT", "/presence/" + alice.UserID + "/status", map[string]any{"presence": "online"}, 403, "M_FORBIDDEN"},
		{alice, "GET", "/presence/@nobody:test.local/status", nil, 404, "M_NOT_FOUND"},
		{alice, "PUT", "/sendToDevice/m.test/t0", map[string]any{"messages": map[string]any{"not a user": map[string]any{"D": map[string]any{}}}}, 400, "M_INVALID_PARAM"},
		{alice, "PUT", "/sendToDevice/m.test/t0", map[string]any{"messages": 5}, 400, "M_BAD_JSON"},
	} {
		r := must[*testclient.Response](t)(tc.c.Do(tc.method, tc.path, tc.body))
		if r.Status != tc.status || r.Errcode() != tc.errcode {
			t.Errorf("%s %s: %d %s, want %d %s", tc.method, tc.path, r.Status, r.Raw, tc.status, tc.errcode)
		}
	}

	// Presence: bob sees alice's status message.
	ok(alice.MustOK("PUT", "/presence/"+alice.UserID+"/status", map[string]any{"presence": "unavailable", "status_msg": "lunch"}))
	if p := ok(bob.MustOK("GET", "/presence/"+alice.UserID+"/status", nil)); p["presence"] != "unavailable" || p["status_msg"] != "lunch" {
		t.Fatalf("GET presence: %v", p)
	}
	got = syncUntil(t, bob, bobSince, func(m map[string]any) bool {
		for _, e := range topPart(m, "presence") {
			if ev := e.(map[string]any); ev["sender"] == alice.UserID && ev["content"].(map[string]any)["status_msg"] == "lunch" {
				return true
			}
		}
		return false
	})
	bobSince = got["next_batch"].(string)

	// To-device: to bob's every device; delivered once.
	ok(alice.MustOK("PUT", "/sendToDevice/m.test/td1", map[string]any{"messages": map[string]any{bob.UserID: map[string]any{"*": map[string]any{"secret": 1}}}}))
	ok(alice.MustOK("PUT", "/sendToDevice/m.test/td1", map[string]any{"messages": map[string]any{bob.UserID: map[string]any{"*": map[string]any{"secret": 1}}}}))
	got = syncUntil(t, bob, bobSince, func(m map[string]any) bool { return len(topPart(m, "to_device")) > 0 })
	td := topPart(got, "to_device")
	if len(td) != 1 || jsonString(td[0]) != `{"content":{"secret":1},"sender":"`+alice.UserID+`","type":"m.test"}` {
		t.Fatalf("to-device: %s", jsonString(td))
	}
	next := must[map[string]any](t)(bob.MustOK("GET", "/sync?timeout=0&since="+url.QueryEscape(got["next_batch"].(string)), nil))
	if len(topPart(next, "to_device")) != 0 {
		t.Fatalf("to-device delivered twice: %v", topPart(next, "to_device"))
	}
	// Replaying the older token still gives the message (not yet acknowledged
	// by a sync past it), but once acknowledged it is gone.
	again := must[map[string]any](t)(bob.MustOK("GET", "/sync?timeout=0&since="+url.QueryEscape(bobSince), nil))
	if len(topPart(again, "to_device")) != 0 {
		t.Fatalf("to-device returned after it was acknowledged: %v", topPart(again, "to_device"))
	}
}

func contains(s, sub string) bool {
	return len(sub) == 0 || (len(s) >= len(sub) && indexOf(s, sub) >= 0)
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

// TestFilters: a stored filter is returned verbatim and /sync applies its
// timeline limit, event types and lazy-loading of members.
func TestFilters(t *testing.T) {
	s := start(t, t.TempDir())
	defer s.Close()
	ok := must[map[string]any](t)
	alice, bob, carol := register(t, s, "alice"), register(t, s, "bob"), register(t, s, "carol")
	roomID := ok(alice.MustOK("POST", "/createRoom", map[string]any{"preset": "public_chat"}))["room_id"].(string)
	ok(bob.MustOK("POST", path(roomID)+"/join", nil))
	ok(carol.MustOK("POST", path(roomID)+"/join", nil))
	for i := 0; i < 5; i++ {
		must[string](t)(bob.Send(roomID, fmt.Sprintf("b%d", i), "from bob"))
	}
	ok(alice.MustOK("PUT", path(roomID)+"/send/m.custom/c1", map[string]any{"x": 1}))
	last := must[string](t)(alice.Send(roomID, "a1", "last"))
	syncUntil(t, alice, "", func(m map[string]any) bool { return findEvent(roomPart(m, roomID, "timeline"), last) != nil })

	filter := `{"room":{"timeline":{"limit":3,"types":["m.room.*"]},"state":{"lazy_load_members":true}}}`
	fid := ok(alice.MustOK("POST", "/user/"+alice.UserID+"/filter", []byte(filter)))["filter_id"].(string)
	r := must[*testclient.Response](t)(alice.Do("GET", "/user/"+alice.UserID+"/filter/"+fid, nil))
	if r.Status != 200 || string(r.Raw) != filter {
		t.Fatalf("GET filter: %d %s", r.Status, r.Raw)
	}
	got := ok(alice.MustOK("GET", "/sync?filter="+fid, nil))
	tl := roomPart(got, roomID, "timeline")
	if len(tl) != 3 {
		t.Fatalf("timeline limit 3: %d events", len(tl))
	}
	for _, e := range tl {
		if e.(map[string]any)["type"] == "m.custom" {
			t.Fatal("the types filter let m.custom through")
		}
	}
	members := map[string]bool{}
	for _, e := range roomPart(got, roomID, "state") {
		if m := e.(map[string]any); m["type"] == "m.room.member" {
			members[m["state_key"].(string)] = true
		}
	}
	if !members[alice.UserID] || !members[bob.UserID] || members[carol.UserID] {
		t.Fatalf("lazy-loaded members %v, want alice and bob (senders and self) without carol", members)
	}
	for _, tc := range []struct {
		c    *testclient.Client
		m, p string
		body any
		code int
	}{
		{bob, "GET", "/user/" + alice.UserID + "/filter/" + fid, nil, 403},
		{alice, "GET", "/user/" + alice.UserID + "/filter/999", nil, 404},
		{alice, "POST", "/user/" + alice.UserID + "/filter", []byte(`{"room":{"timeline":{"limit":"x"}}}`), 400},
		{alice, "POST", "/user/" + alice.UserID + "/filter", []byte(`[]`), 400},
		{alice, "GET", "/sync?filter=12345", nil, 400},
		{alice, "GET", "/sync?filter=" + url.QueryEscape(`{"room":`), nil, 400},
	} {
		r := must[*testclient.Response](t)(tc.c.Do(tc.m, tc.p, tc.body))
		if r.Status != tc.code {
			t.Errorf("%s %s: %d %s, want %d", tc.m, tc.p, r.Status, r.Raw, tc.code)
		}
	}
}

// TestLongPollWakesPerStream: a long-poll from a token with nothing after
// it stays parked while nothing happens, and wakes within 100 ms of a
// change to any one stream alone (typing, a receipt, a to-device
// message), with that change in its response.
func TestLongPollWakesPerStream(t *testing.T) {
	s, alice, bob, roomID := aliceAndBobInRoom(t)
	defer s.Close()
	ok := must[map[string]any](t)
	msgID := must[string](t)(alice.Send(roomID, "m1", "hello"))
	since := syncUntil(t, bob, "", func(m map[string]any) bool { return findEvent(roomPart(m, roomID, "timeline"), msgID) != nil })["next_batch"].(string)
	// Bob's syncs mark him online (an entry of its own): wait until a sync
	// from the token finds nothing new.
	for deadline := time.Now().Add(10 * time.Second); ; {
		next := ok(bob.Sync(since, 0, 1))["next_batch"].(string)
		if next == since {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the streams kept moving on an idle account")
		}
		since = next
	}
	for _, tc := range []struct {
		name   string
		change func() error
		seen   func(map[string]any) bool
	}{
		{"typing", func() error {
			_, err := alice.MustOK("PUT", path(roomID)+"/typing/"+alice.UserID, map[string]any{"typing": true, "timeout": 30000})
			return err
		}, func(m map[string]any) bool { return ofType(roomPart(m, roomID, "ephemeral"), "m.typing") != nil }},
		{"receipt", func() error {
			_, err := alice.MustOK("POST", path(roomID)+"/receipt/m.read/"+msgID, map[string]any{})
			return err
		}, func(m map[string]any) bool { return ofType(roomPart(m, roomID, "ephemeral"), "m.receipt") != nil }},
		{"to-device", func() error {
			_, err := alice.MustOK("PUT", "/sendToDevice/m.test/wake", map[string]any{"messages": map[string]any{bob.UserID: map[string]any{"*": map[string]any{"n": 1}}}})
			return err
		}, func(m map[string]any) bool { return len(topPart(m, "to_device")) > 0 }},
	} {
		type result struct {
			at   time.Time
			resp map[string]any
			err  error
		}
		// Park a long-poll. Bob's syncs mark him online now and then, an
		// entry that can land after the token settled: a response with
		// nothing but his own presence moves the token on; anything else
		// before the change is a failure.
		var done chan result
		for attempt, parked := 0, false; !parked; attempt++ {
			if attempt == 10 {
				t.Fatalf("%s: no long-poll stayed parked in 10 attempts", tc.name)
			}
			done = make(chan result, 1)
			go func() {
				r, err := bob.Sync(since, 20*time.Second, 1)
				done <- result{time.Now(), r, err}
			}()
			select {
			case r := <-done:
				if r.err != nil || !onlyOwnPresence(r.resp, bob.UserID) {
					t.Fatalf("%s: the long-poll returned before any change: %v %v", tc.name, r.resp, r.err)
				}
				since = r.resp["next_batch"].(string)
			case <-time.After(300 * time.Millisecond):
				parked = true
			}
		}
		if err := tc.change(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		changed := time.Now()
		select {
		case r := <-done:
			if r.err != nil {
				t.Fatalf("%s: %v", tc.name, r.err)
			}
			if !tc.seen(r.resp) {
				t.Fatalf("%s: woke without the change: %s", tc.name, jsonString(r.resp))
			}
			if d := r.at.Sub(changed); d > 100*time.Millisecond {
				t.Errorf("%s: the long-poll woke %v after the change was acknowledged", tc.name, d)
			}
			since = r.resp["next_batch"].(string)
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the long-poll did not wake", tc.name)
		}
	}
}

// onlyOwnPresence reports whether a sync response carries nothing but the
// user's own presence.
func onlyOwnPresence(m map[string]any, userID string) bool {
	pres := topPart(m, "presence")
	if len(pres) == 0 || len(topPart(m, "to_device")) > 0 || len(topPart(m, "account_data")) > 0 {
		return false
	}
	for _, e := range pres {
		if ev, _ := e.(map[string]any); ev["sender"] != userID {
			return false
		}
	}
	rooms, _ := m["rooms"].(map[string]any)
	for _, section := range []string{"join", "invite", "leave"} {
		if r, _ := rooms[section].(map[string]any); len(r) > 0 {
			return false
		}
	}
	return true
}
