package server_test

import (
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/testclient"
)

// syncWith calls /sync with an inline filter and returns the room's section.
func syncWith(t *testing.T, c *testclient.Client, since, filter, roomID string) (room map[string]any, next string) {
	t.Helper()
	q := url.Values{"filter": {filter}, "timeout": {"0"}}
	if since != "" {
		q.Set("since", since)
	}
	b := must[map[string]any](t)(c.MustOK("GET", "/sync?"+q.Encode(), nil))
	join := b["rooms"].(map[string]any)["join"].(map[string]any)
	room, _ = join[roomID].(map[string]any)
	return room, b["next_batch"].(string)
}

// stateKeys lists a sync room section's state entries as "type|state_key".
func stateKeys(room map[string]any) []string {
	var out []string
	for _, e := range room["state"].(map[string]any)["events"].([]any) {
		m := e.(map[string]any)
		out = append(out, m["type"].(string)+"|"+m["state_key"].(string))
	}
	slices.Sort(out)
	return out
}

// TestLazyLoadMembers checks that an initial sync with lazy-loaded members
// carries the member events of the timeline's senders and of the user, and
// no other member, while the rest of the state is complete; without the
// filter option every member is there.
func TestLazyLoadMembers(t *testing.T) {
	s := start(t, t.TempDir())
	defer s.Close()
	alice, bob, carol, dave := register(t, s, "alice"), register(t, s, "bob"), register(t, s, "carol"), register(t, s, "dave")
	ok := must[map[string]any](t)
	roomID := ok(alice.MustOK("POST", "/createRoom", map[string]any{"preset": "public_chat", "name": "lazy"}))["room_id"].(string)
	for _, c := range []*testclient.Client{bob, carol, dave} {
		ok(c.MustOK("POST", path(roomID)+"/join", nil))
	}
	must[string](t)(alice.Send(roomID, "l1", "from alice"))
	must[string](t)(bob.Send(roomID, "l2", "from bob"))
	if ids, _, err := dave.CollectMessages(roomID, "", 2, 10*time.Second); err != nil || len(ids) != 2 {
		t.Fatalf("dave saw %d messages: %v", len(ids), err)
	}
	room, _ := syncWith(t, dave, "", `{"room":{"timeline":{"limit":2},"state":{"lazy_load_members":true}}}`, roomID)
	got := stateKeys(room)
	want := []string{"m.room.create|", "m.room.history_visibility|", "m.room.join_rules|",
		"m.room.member|@alice:test.local", "m.room.member|@bob:test.local", "m.room.member|@dave:test.local",
		"m.room.name|", "m.room.power_levels|"}
	if !slices.Equal(got, want) {
		t.Fatalf("lazy-loaded state:\n got %v\nwant %v", got, want)
	}
	room, _ = syncWith(t, dave, "", `{"room":{"timeline":{"limit":2}}}`, roomID)
	if got := stateKeys(room); !slices.Contains(got, "m.room.member|@carol:test.local") || len(got) != len(want)+1 {
		t.Fatalf("full state: %v", got)
	}
}

// TestGappySyncStateDelta checks that an incremental sync whose timeline
// is limited carries the state changes since the token (a topic change and
// a join before the timeline), not the whole state.
func TestGappySyncStateDelta(t *testing.T) {
	s := start(t, t.TempDir())
	defer s.Close()
	alice, bob, carol := register(t, s, "alice"), register(t, s, "bob"), register(t, s, "carol")
	ok := must[map[string]any](t)
	roomID := ok(alice.MustOK("POST", "/createRoom", map[string]any{"preset": "public_chat", "name": "gappy"}))["room_id"].(string)
	ok(bob.MustOK("POST", path(roomID)+"/join", nil))
	must[string](t)(alice.Send(roomID, "g0", "before the token"))
	_, since, err := bob.CollectMessages(roomID, "", 1, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ok(alice.MustOK("PUT", path(roomID)+"/state/m.room.topic", map[string]string{"topic": "new"}))
	ok(carol.MustOK("POST", path(roomID)+"/join", nil))
	var last string
	for i := 0; i < 5; i++ {
		last = must[string](t)(alice.Send(roomID, "g"+string(rune('1'+i)), "after the token"))
	}
	if _, _, err := bob.CollectMessages(roomID, since, 5, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	room, _ := syncWith(t, bob, since, `{"room":{"timeline":{"limit":2}}}`, roomID)
	tl := room["timeline"].(map[string]any)
	evs := tl["events"].([]any)
	if tl["limited"] != true || len(evs) != 2 || evs[1].(map[string]any)["event_id"] != last {
		t.Fatalf("timeline: limited %v, %d events", tl["limited"], len(evs))
	}
	if got, want := stateKeys(room), []string{"m.room.member|@carol:test.local", "m.room.topic|"}; !slices.Equal(got, want) {
		t.Fatalf("gappy sync state %v, want the changes %v", got, want)
	}
}
