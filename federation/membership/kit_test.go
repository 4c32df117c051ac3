package membership

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/tidwall/sjson"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/eventauth"
	"github.com/gomatrixlib/gomatrixlib/federation/federationtest"
	"github.com/gomatrixlib/gomatrixlib/federation/inbound"
	"github.com/gomatrixlib/gomatrixlib/roomtest"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
)

// kitJoin joins @bob:hs.test to room through the fake server remote.
func kitJoin(remote *federationtest.Server, room *roomtest.Room) (*Joined, error) {
	return PerformJoin(context.Background(), JoinRequest{
		Client: remote.Network.FederationClient("hs.test", nil), Servers: []string{remote.Name}, RoomID: room.ID,
		UserID: "@bob:hs.test", ServerName: "hs.test", Key: remote.Network.Keys.Key("hs.test"), Keys: remote.Network, MaxEvents: 100})
}

// TestKitJoin joins rooms of the test kit's fake homeservers (another
// implementation of the resident side) in several room versions.
func TestKitJoin(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"2", "10", "11", "12"} {
		t.Run("v"+v, func(t *testing.T) {
			t.Parallel()
			room := roomtest.New(t, roomtest.Options{Version: v, Creator: "@alice:remote.test"})
			room.SetState(room.Creator(), "m.room.topic", "", map[string]any{"topic": "kit"})
			remote := federationtest.New(t, federationtest.Options{Name: "remote.test", Rooms: []*roomtest.Room{room}})
			j, err := kitJoin(remote, room)
			if err != nil {
				t.Fatal(err)
			}
			if j.Rules.ID != v || len(j.Dropped) != 0 || j.State.Create().EventID() != room.CreateEvent().EventID() || j.State[eventauth.StateKey{Type: "m.room.topic"}] == nil {
				t.Fatalf("version %s, dropped %v, state %d", j.Rules.ID, j.Dropped, len(j.State))
			}
			if m := room.State().Member("@bob:hs.test"); m == nil || m.EventID() != j.Join.EventID() {
				t.Fatal("the fake resident did not receive the join")
			}
		})
	}
}

// TestKitHostileResidents: residents that answer with a template for
// another user, a forged state event, a state without its create event,
// or too many events.
func TestKitHostileResidents(t *testing.T) {
	t.Parallel()
	setup := func(t *testing.T) (*roomtest.Room, *federationtest.Server) {
		room := roomtest.New(t, roomtest.Options{Version: "10", Creator: "@alice:remote.test"})
		return room, federationtest.New(t, federationtest.Options{Name: "remote.test", Rooms: []*roomtest.Room{room}})
	}
	t.Run("template for another user", func(t *testing.T) {
		t.Parallel()
		room, remote := setup(t)
		remote.Handle(federationtest.MakeJoin, func(req *federationtest.Request) federationtest.Response {
			resp := remote.Default(req)
			body, _ := json.Marshal(resp.Body)
			body, _ = sjson.SetBytes(body, "event.state_key", "@eve:hs.test")
			return federationtest.JSON(200, json.RawMessage(body))
		})
		if _, err := kitJoin(remote, room); !errors.Is(err, ErrBadResponse) {
			t.Fatalf("got %v", err)
		}
		if len(remote.Requests(federationtest.SendJoin)) != 0 {
			t.Fatal("sent a join built from a bad template")
		}
	})
	t.Run("forged state event", func(t *testing.T) {
		t.Parallel()
		room, remote := setup(t)
		forged := room.Forge(roomtest.BadSignature, roomtest.Event{Type: "m.room.topic", Sender: room.Creator(),
			StateKey: roomtest.Str(""), Content: `{"topic":"evil"}`})
		remote.Handle(federationtest.SendJoin, func(req *federationtest.Request) federationtest.Response {
			resp := remote.Default(req)
			body := resp.Body.(*federationtest.SendJoinResponse)
			body.State = append(body.State, forged.JSON)
			return resp
		})
		j, err := kitJoin(remote, room)
		if err != nil {
			t.Fatal(err)
		}
		if len(j.Dropped) != 1 || !errors.Is(j.Dropped[0].Err, inbound.ErrSignature) || j.State[eventauth.StateKey{Type: "m.room.topic"}] != nil {
			t.Fatalf("dropped %v, topic %v", j.Dropped, j.State[eventauth.StateKey{Type: "m.room.topic"}])
		}
	})
	t.Run("no create event", func(t *testing.T) {
		t.Parallel()
		room, remote := setup(t)
		create := room.CreateEvent().EventID()
		remote.Handle(federationtest.SendJoin, func(req *federationtest.Request) federationtest.Response {
			resp := remote.Default(req)
			body := resp.Body.(*federationtest.SendJoinResponse)
			keep := func(l []json.RawMessage) (out []json.RawMessage) {
				for _, e := range l {
					if !json.Valid(e) || !containsID(e, create) {
						out = append(out, e)
					}
				}
				return out
			}
			body.State, body.AuthChain = keep(body.State), keep(body.AuthChain)
			return resp
		})
		if _, err := kitJoin(remote, room); !errors.Is(err, ErrBadResponse) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("too many events", func(t *testing.T) {
		t.Parallel()
		room, remote := setup(t)
		remote.Handle(federationtest.SendJoin, func(req *federationtest.Request) federationtest.Response {
			resp := remote.Default(req)
			body := resp.Body.(*federationtest.SendJoinResponse)
			for len(body.AuthChain) <= 100 {
				body.AuthChain = append(body.AuthChain, body.State[0])
			}
			return resp
		})
		if _, err := kitJoin(remote, room); !errors.Is(err, ErrBadResponse) {
			t.Fatalf("got %v", err)
		}
	})
}

// containsID reports whether the raw event e of a room version 10 room
// is the event id.
func containsID(e json.RawMessage, id string) bool {
	rules, err := roomversion.Get("10")
	if err != nil {
		return false
	}
	ev, err := event.Parse(rules, e)
	return err == nil && ev.EventID() == id
}
