package server_test

// Regression tests for the bugs of issue #21, one test per bug.

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/testclient"
)

// waitSync polls /sync until cond holds for the response or the deadline
// passes, and returns the last response.
func waitSync(t *testing.T, c *testclient.Client, cond func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err := c.Sync("", 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within 10 s; last sync: %v", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Bug 2: /sync honours timeouts above one second and still wakes at once
// on new data.
func TestSyncTimeout(t *testing.T) {
	s := start(t, t.TempDir())
	defer s.Close()
	alice := register(t, s, "alice")
	roomID := must[map[string]any](t)(alice.MustOK("POST", "/createRoom", nil))["room_id"].(string)
	_, since, err := alice.CollectMessages(roomID, "", 0, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// Let the stream settle, then take a token with nothing after it.
	waitSync(t, alice, func(m map[string]any) bool { return len(testclient.TimelineIDs(m, roomID, "m.room.member")) == 1 })
	since = must[map[string]any](t)(alice.Sync("", 0, 1))["next_batch"].(string)
	// Syncing marks alice online, an entry of its own that the next sync
	// may carry: wait until a sync from the token finds nothing new.
	for deadline := time.Now().Add(10 * time.Second); ; {
		next := must[map[string]any](t)(alice.Sync(since, 0, 1))["next_batch"].(string)
		if next == since {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the streams kept moving on an idle account")
		}
		since = next
	}

	start := time.Now()
	if _, err := alice.Sync(since, 2500*time.Millisecond, 10); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 2400*time.Millisecond || d > 3500*time.Millisecond {
		t.Fatalf("idle /sync with timeout 2.5 s returned after %v", d)
	}

	// A message wakes a long-poll with a long timeout.
	done := make(chan time.Time, 1)
	go func() {
		_, _ = alice.Sync(since, 20*time.Second, 10)
		done <- time.Now()
	}()
	time.Sleep(300 * time.Millisecond)
	if _, err := alice.Send(roomID, "wake", "wake up"); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	select {
	case at := <-done:
		if at.Sub(sent) > time.Second {
			t.Fatalf("long-poll returned %v after the send", at.Sub(sent))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("long-poll did not wake on a new message")
	}

	// Bad timeouts are refused.
	r := must[*testclient.Response](t)(alice.Do("GET", "/sync?timeout=soon", nil))
	if r.Status != 400 || r.Errcode() != "M_INVALID_PARAM" {
		t.Fatalf("timeout=soon: %d %s", r.Status, r.Raw)
	}
}

// Bug 3: state paths with a trailing slash mean the empty state key, for
// PUT and GET.
func TestStateTrailingSlash(t *testing.T) {
	s := start(t, t.TempDir())
	defer s.Close()
	alice := register(t, s, "alice")
	roomID := must[map[string]any](t)(alice.MustOK("POST", "/createRoom", map[string]any{"name": "before"}))["room_id"].(string)
	put := must[map[string]any](t)(alice.MustOK("PUT", path(roomID)+"/state/m.room.name/", map[string]string{"name": "after"}))
	if put["event_id"] == nil {
		t.Fatalf("PUT with trailing slash: %v", put)
	}
	for _, p := range []string{"/state/m.room.name/", "/state/m.room.name"} {
		got := must[map[string]any](t)(alice.MustOK("GET", path(roomID)+p, nil))
		if got["name"] != "after" {
			t.Fatalf("GET %s: %v", p, got)
		}
	}
	must[map[string]any](t)(alice.MustOK("PUT", path(roomID)+"/state/m.room.topic/", map[string]string{"topic": "slash"}))
	if got := must[map[string]any](t)(alice.MustOK("GET", path(roomID)+"/state/m.room.topic/", nil)); got["topic"] != "slash" {
		t.Fatalf("topic: %v", got)
	}
}

// Bug 6: status codes for a wrong method, an oversized event, an empty
// event type and invalid UTF-8 in path parameters.
func TestStatusCodes(t *testing.T) {
	s := start(t, t.TempDir())
	defer s.Close()
	alice := register(t, s, "alice")
	roomID := must[map[string]any](t)(alice.MustOK("POST", "/createRoom", nil))["room_id"].(string)
	// 60000 bytes of body: under the request limit, but the event with its
	// envelope and signature is over 65536 bytes.
	big := []byte(`{"msgtype":"m.text","body":"` + strings.Repeat("x", 65500) + `"}`)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	nr := *alice
	nr.HTTP = noRedirect
	tests := []struct {
		name, method, path string
		body               any
		status             int
		errcode            string
	}{
		{"wrong method on a known path", "POST", "/account/whoami", nil, 405, "M_UNRECOGNIZED"},
		{"wrong method on sync", "DELETE", "/sync", nil, 405, "M_UNRECOGNIZED"},
		{"event over 65536 bytes", "PUT", path(roomID) + "/send/m.room.message/big", big, 413, "M_TOO_LARGE"},
		{"empty event type", "PUT", path(roomID) + "/send//t1", map[string]string{"body": "x"}, 400, "M_INVALID_PARAM"},
		{"invalid UTF-8 in event type", "PUT", path(roomID) + "/send/m.%FF/t2", map[string]string{"body": "x"}, 400, "M_INVALID_PARAM"},
		{"invalid UTF-8 in txn ID", "PUT", path(roomID) + "/send/m.room.message/%C3%28", map[string]string{"body": "x"}, 400, "M_INVALID_PARAM"},
		{"invalid UTF-8 in state key", "PUT", path(roomID) + "/state/m.room.name/%FF", map[string]string{"name": "x"}, 400, "M_INVALID_PARAM"},
		{"invalid UTF-8 in room ID", "GET", "/rooms/%21%FF:test.local/messages", nil, 400, "M_INVALID_PARAM"},
		{"unknown path", "GET", "/no/such/thing", nil, 404, "M_UNRECOGNIZED"},
	}
	for _, tc := range tests {
		r, err := nr.Do(tc.method, tc.path, tc.body)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != tc.status || r.Errcode() != tc.errcode {
			t.Errorf("%s: %d %s, want %d %s", tc.name, r.Status, r.Raw, tc.status, tc.errcode)
		}
	}
}

// findEvent returns the event with the ID from a list of client events.
func findEvent(evs []any, eventID string) map[string]any {
	for _, e := range evs {
		if m, _ := e.(map[string]any); m["event_id"] == eventID {
			return m
		}
	}
	return nil
}

func syncTimeline(s map[string]any, roomID string) []any {
	rooms, _ := s["rooms"].(map[string]any)
	join, _ := rooms["join"].(map[string]any)
	room, _ := join[roomID].(map[string]any)
	tl, _ := room["timeline"].(map[string]any)
	evs, _ := tl["events"].([]any)
	return evs
}

// checkRedacted fails unless ev is the redacted form of a message whose
// redaction is redactionID.
func checkRedacted(t *testing.T, where string, ev map[string]any, redactionID string) {
	t.Helper()
	if ev == nil {
		t.Fatalf("%s: event missing", where)
	}
	if c, _ := ev["content"].(map[string]any); c == nil || len(c) != 0 {
		t.Fatalf("%s: content not redacted: %v", where, ev["content"])
	}
	u, _ := ev["unsigned"].(map[string]any)
	because, _ := u["redacted_because"].(map[string]any)
	if because["event_id"] != redactionID || because["type"] != "m.room.redaction" {
		t.Fatalf("%s: unsigned.redacted_because = %v", where, u)
	}
}

// Bugs 1 and 5: after a redaction every reader serves the target redacted
// (with unsigned.redacted_because), and redaction events carry redacts at
// the top level and in content, in room versions 10 and 12.
func TestRedactionsApplied(t *testing.T) {
	s := start(t, t.TempDir())
	defer s.Close()
	alice, bob := register(t, s, "alice"), register(t, s, "bob")
	for _, version := range []string{"10", "12"} {
		t.Run("v"+version, func(t *testing.T) {
			ok := must[map[string]any](t)
			roomID := ok(alice.MustOK("POST", "/createRoom", map[string]any{"room_version": version, "preset": "public_chat", "topic": "secret topic"}))["room_id"].(string)
			ok(bob.MustOK("POST", path(roomID)+"/join", nil))
			msgID := must[string](t)(alice.Send(roomID, "m-"+version, "secret text"))
			// Bob may not redact alice's message: he lacks the redact level.
			if r := must[*testclient.Response](t)(bob.Do("PUT", path(roomID)+"/redact/"+msgID+"/b-"+version, map[string]string{})); r.Status != 403 {
				t.Fatalf("bob redacting alice's message: %d %s", r.Status, r.Raw)
			}
			redID := ok(alice.MustOK("PUT", path(roomID)+"/redact/"+msgID+"/r-"+version, map[string]string{"reason": "oops"}))["event_id"].(string)
			topicID := ""
			st, err := alice.Do("GET", path(roomID)+"/state", nil)
			if err != nil {
				t.Fatal(err)
			}
			var stateEvs []map[string]any
			if err := jsonUnmarshal(st.Raw, &stateEvs); err != nil {
				t.Fatal(err)
			}
			for _, e := range stateEvs {
				if e["type"] == "m.room.topic" {
					topicID = e["event_id"].(string)
				}
			}
			redTopicID := ok(alice.MustOK("PUT", path(roomID)+"/redact/"+topicID+"/rt-"+version, map[string]string{}))["event_id"].(string)

			// /sync (fresh) sees both targets redacted, and the redactions
			// with redacts in both places.
			sy := waitSync(t, bob, func(m map[string]any) bool { return findEvent(syncTimeline(m, roomID), redTopicID) != nil })
			tl := syncTimeline(sy, roomID)
			checkRedacted(t, "/sync timeline", findEvent(tl, msgID), redID)
			for _, id := range []string{redID, redTopicID} {
				red := findEvent(tl, id)
				c, _ := red["content"].(map[string]any)
				if red["redacts"] == nil || red["redacts"] != c["redacts"] {
					t.Fatalf("redaction %s served without redacts at the top level and in content: %v", id, red)
				}
			}
			if r := findEvent(tl, redID); r["content"].(map[string]any)["reason"] != "oops" {
				t.Fatalf("redaction lost its reason: %v", r)
			}
			// /messages.
			msgs := ok(bob.MustOK("GET", path(roomID)+"/messages?dir=b&limit=50", nil))
			checkRedacted(t, "/messages", findEvent(msgs["chunk"].([]any), msgID), redID)
			// Event fetch.
			ev := ok(bob.MustOK("GET", path(roomID)+"/event/"+msgID, nil))
			checkRedacted(t, "/event", ev, redID)
			// State readers: the redacted topic has empty content.
			topic := ok(bob.MustOK("GET", path(roomID)+"/state/m.room.topic", nil))
			if len(topic) != 0 {
				t.Fatalf("redacted topic still served: %v", topic)
			}
			st, err = bob.Do("GET", path(roomID)+"/state", nil)
			if err != nil {
				t.Fatal(err)
			}
			stateEvs = nil
			if err := jsonUnmarshal(st.Raw, &stateEvs); err != nil {
				t.Fatal(err)
			}
			for _, e := range stateEvs {
				if e["event_id"] == topicID {
					checkRedactedState(t, e, redTopicID)
				}
			}
		})
	}
}

func checkRedactedState(t *testing.T, ev map[string]any, redactionID string) {
	t.Helper()
	checkRedacted(t, "/state", ev, redactionID)
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
