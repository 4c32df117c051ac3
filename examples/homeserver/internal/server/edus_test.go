package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/testclient"
	"github.com/gomatrixlib/gomatrixlib/federation"
	"github.com/gomatrixlib/gomatrixlib/roomtest"
)

// TestRemoteEDUs: another server's m.typing and m.receipt EDUs reach our
// user's /sync; EDUs for a user of a third server, for a user not in the
// room, and of a bad shape are dropped while the transaction still
// succeeds.
func TestRemoteEDUs(t *testing.T) {
	room := remoteRoom(t, nil)
	s, _, as := hostileSetup(t, room)
	bob := &testclient.Client{Base: "http://" + s.ClientAddr()}
	if err := bob.Register("bob", "secret-bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.MustOK("POST", "/join/"+url.PathEscape(room.ID)+"?server_name=remote.test", map[string]any{}); err != nil {
		t.Fatal(err)
	}
	msg, err := room.Send(roomtest.Event{Type: "m.room.message", Sender: room.Creator(), Content: `{"msgtype":"m.text","body":"read me"}`})
	if err != nil {
		t.Fatal(err)
	}
	edu := func(typ string, content any) json.RawMessage {
		b, _ := json.Marshal(map[string]any{"edu_type": typ, "content": content})
		return b
	}
	typing := func(user string) json.RawMessage {
		return edu("m.typing", map[string]any{"room_id": room.ID, "user_id": user, "typing": true})
	}
	receipt := func(user string) json.RawMessage {
		return edu("m.receipt", map[string]any{room.ID: map[string]any{"m.read": map[string]any{
			user: map[string]any{"event_ids": []string{msg.EventID()}, "data": map[string]any{"ts": 1700000000000}}}}})
	}
	results, err := as.SendTransaction(context.Background(), "hs.test", "edus-1", federation.Transaction{
		Origin: "remote.test", OriginServerTS: time.Now().UnixMilli(), PDUs: []json.RawMessage{msg.JSON()},
		EDUs: []json.RawMessage{
			typing("@mallory:elsewhere.test"), // not a user of the origin
			typing("@eve:remote.test"),        // not in the room
			receipt("@eve:remote.test"),       // not in the room
			edu("m.typing", "not an object"),  // bad shape
			edu("m.typing", map[string]any{}), // missing fields
			edu("m.receipt", map[string]any{room.ID: []int{1}}),
			typing("@alice:remote.test"),
			receipt("@alice:remote.test"),
		}})
	if err != nil {
		t.Fatalf("transaction with bad EDUs: %v", err)
	}
	if r := string(results[msg.EventID()]); r != "{}" {
		t.Fatalf("PDU result %s", r)
	}

	// Poll bob's /sync until alice's typing and receipt arrive.
	var typers []string
	var readers []string
	deadline := time.Now().Add(20 * time.Second)
	for {
		sync, err := bob.Sync("", 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		typers, readers = ephemeralOf(sync, room.ID, msg.EventID())
		if slices.Contains(typers, "@alice:remote.test") && slices.Contains(readers, "@alice:remote.test") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alice's typing and receipt not in bob's sync: typing %v, read %v", typers, readers)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, u := range append(typers, readers...) {
		if u != "@alice:remote.test" {
			t.Errorf("a dropped EDU reached /sync: %s (typing %v, read %v)", u, typers, readers)
		}
	}
}

// ephemeralOf returns the typing users of the room and the users whose
// m.read receipt points at eventID in a /sync response.
func ephemeralOf(sync map[string]any, roomID, eventID string) (typing, read []string) {
	var body struct {
		Rooms struct {
			Join map[string]struct {
				Ephemeral struct {
					Events []struct {
						Type    string          `json:"type"`
						Content json.RawMessage `json:"content"`
					} `json:"events"`
				} `json:"ephemeral"`
			} `json:"join"`
		} `json:"rooms"`
	}
	raw, _ := json.Marshal(sync)
	if json.Unmarshal(raw, &body) != nil {
		return nil, nil
	}
	for _, ev := range body.Rooms.Join[roomID].Ephemeral.Events {
		switch ev.Type {
		case "m.typing":
			var c struct {
				UserIDs []string `json:"user_ids"`
			}
			_ = json.Unmarshal(ev.Content, &c)
			typing = append(typing, c.UserIDs...)
		case "m.receipt":
			var c map[string]map[string]map[string]any
			_ = json.Unmarshal(ev.Content, &c)
			for u := range c[eventID]["m.read"] {
				read = append(read, u)
			}
		}
	}
	return typing, read
}

// TestFederationTypingAndReceipts: alice on one server types and reads a
// message; bob on the other server sees both in his /sync, and sees the
// typing end when alice stops.
func TestFederationTypingAndReceipts(t *testing.T) {
	_, _, alice, bob, roomID := federatedRoom(t)
	room := "/rooms/" + url.PathEscape(roomID)
	wa := newSyncWaiter(t, alice, roomID)
	msg, err := bob.Send(roomID, "hi", "hello alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wa.waitFor(msg, 20*time.Second); err != nil {
		t.Fatal(err)
	}

	if _, err := alice.MustOK("PUT", room+"/typing/"+url.PathEscape(alice.UserID), map[string]any{"typing": true, "timeout": 30000}); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.MustOK("POST", room+"/receipt/m.read/"+url.PathEscape(msg), map[string]any{}); err != nil {
		t.Fatal(err)
	}
	seen := func(wantTyping bool) func() error {
		return func() error {
			sync, err := bob.Sync("", 0, 10)
			if err != nil {
				return err
			}
			typing, read := ephemeralOf(sync, roomID, msg)
			if slices.Contains(typing, alice.UserID) != wantTyping {
				return fmt.Errorf("typing %v, want alice typing: %v", typing, wantTyping)
			}
			if !slices.Contains(read, alice.UserID) {
				return fmt.Errorf("alice's receipt not seen: read %v", read)
			}
			return nil
		}
	}
	eventually(t, 20*time.Second, "alice typing and her receipt on b", seen(true))
	if _, err := alice.MustOK("PUT", room+"/typing/"+url.PathEscape(alice.UserID), map[string]any{"typing": false}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "alice no longer typing on b", seen(false))
}
