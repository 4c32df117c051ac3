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
