package server_test

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/testclient"
)

var errNotYet = errors.New("not yet")

func timelineOf(sync map[string]any, roomID string) []string {
	return testclient.TimelineIDs(sync, roomID, "m.room.message")
}

// TestHistoryVisibility checks /messages and /sync apply the room's
// history visibility: with "joined" a user who joins later does not see
// earlier messages, with "shared" they do.
func TestHistoryVisibility(t *testing.T) {
	s := start(t, t.TempDir())
	defer s.Close()
	alice := register(t, s, "alice")
	for _, tc := range []struct {
		setting    string
		seesBefore bool
	}{{"joined", false}, {"shared", true}, {"invited", false}, {"world_readable", true}} {
		t.Run(tc.setting, func(t *testing.T) {
			bob := register(t, s, "bob"+tc.setting[:3])
			created, err := alice.MustOK("POST", "/createRoom", map[string]any{"preset": "public_chat"})
			if err != nil {
				t.Fatal(err)
			}
			roomID := created["room_id"].(string)
			room := "/rooms/" + url.PathEscape(roomID)
			if _, err := alice.MustOK("PUT", room+"/state/m.room.history_visibility", map[string]string{"history_visibility": tc.setting}); err != nil {
				t.Fatal(err)
			}
			before, err := alice.Send(roomID, "before-"+tc.setting, "before bob joined")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := bob.MustOK("POST", room+"/join", map[string]any{}); err != nil {
				t.Fatal(err)
			}
			after, err := alice.Send(roomID, "after-"+tc.setting, "after bob joined")
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			eventually(t, 5*time.Second, "bob sees the message after his join", func() error {
				var err error
				ids, err = bob.AllMessagesSince(roomID, "")
				if err == nil && !slices.Contains(ids, after) {
					err = fmt.Errorf("%w: %v", errNotYet, ids)
				}
				return err
			})
			if slices.Contains(ids, before) != tc.seesBefore {
				t.Errorf("/messages: bob sees the earlier message: %v, want %v", !tc.seesBefore, tc.seesBefore)
			}
			if all, err := alice.AllMessagesSince(roomID, ""); err != nil || !slices.Contains(all, before) {
				t.Errorf("alice's own history: %v %v", all, err)
			}
			sync, err := bob.Sync("", 0, 50)
			if err != nil {
				t.Fatal(err)
			}
			tl := timelineOf(sync, roomID)
			if slices.Contains(tl, before) != tc.seesBefore || !slices.Contains(tl, after) {
				t.Errorf("/sync timeline %v: earlier message visible %v, want %v", tl, slices.Contains(tl, before), tc.seesBefore)
			}
		})
	}
}

// TestSyncVisibilityMatchesMessages checks that /sync, which decides the
// history visibility of a timeline in one pass carrying the setting and
// the user's membership along it, shows each user exactly the messages
// /messages shows them (which decides each event on its own), across
// changes of the setting and of the user's membership inside one
// timeline.
func TestSyncVisibilityMatchesMessages(t *testing.T) {
	s := start(t, t.TempDir())
	defer s.Close()
	alice := register(t, s, "alice")
	bob := register(t, s, "bob")
	carol := register(t, s, "carol")
	created, err := alice.MustOK("POST", "/createRoom", map[string]any{"preset": "public_chat"})
	if err != nil {
		t.Fatal(err)
	}
	roomID := created["room_id"].(string)
	room := "/rooms/" + url.PathEscape(roomID)
	n := 0
	send := func() {
		t.Helper()
		n++
		if _, err := alice.Send(roomID, fmt.Sprint("m", n), fmt.Sprint("message ", n)); err != nil {
			t.Fatal(err)
		}
	}
	setting := func(v string) {
		t.Helper()
		if _, err := alice.MustOK("PUT", room+"/state/m.room.history_visibility", map[string]string{"history_visibility": v}); err != nil {
			t.Fatal(err)
		}
	}
	do := func(c *testclient.Client, method, path string, body any) {
		t.Helper()
		if _, err := c.MustOK(method, path, body); err != nil {
			t.Fatal(err)
		}
	}
	send()
	setting("joined")
	send()
	do(alice, "POST", room+"/invite", map[string]string{"user_id": bob.UserID})
	send()
	setting("invited")
	send()
	do(bob, "POST", room+"/join", map[string]any{})
	send()
	do(bob, "POST", room+"/leave", map[string]any{})
	send()
	setting("shared")
	send()
	do(bob, "POST", room+"/join", map[string]any{})
	send()
	setting("joined")
	send()
	do(carol, "POST", room+"/join", map[string]any{})
	send()
	// Once the sender sees every message, the sync reader has them all.
	eventually(t, 5*time.Second, "alice sees every message", func() error {
		ids, err := alice.AllMessagesSince(roomID, "")
		if err == nil && len(ids) != n {
			err = fmt.Errorf("%w: %d of %d", errNotYet, len(ids), n)
		}
		return err
	})
	for _, c := range []*testclient.Client{alice, bob, carol} {
		want, err := c.AllMessagesSince(roomID, "")
		if err != nil {
			t.Fatal(err)
		}
		sync, err := c.Sync("", 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		got := timelineOf(sync, roomID)
		if !slices.Equal(got, want) {
			t.Errorf("%s: /sync timeline %v, /messages %v", c.UserID, got, want)
		}
		if len(want) == 0 || len(want) == n && c != alice {
			t.Errorf("%s sees %d of %d messages: the test does not exercise visibility", c.UserID, len(want), n)
		}
	}
}
