package membership

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/tidwall/sjson"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/federation"
	"github.com/gomatrixlib/gomatrixlib/federation/federationtest"
	"github.com/gomatrixlib/gomatrixlib/roomtest"
)

// TestKitInvite invites a user of the kit's fake server and checks what it
// returns; then a server that changes the event, and one that does not
// sign it.
func TestKitInvite(t *testing.T) {
	t.Parallel()
	room := roomtest.New(t, roomtest.Options{Version: "10", Creator: "@alice:hs.test"})
	remote := federationtest.New(t, federationtest.Options{Name: "remote.test", Rooms: []*roomtest.Room{room}})
	client := remote.Network.FederationClient("hs.test", nil)
	ctx := context.Background()
	inv := must[*event.PDU](t)(room.Build(member(room.Creator(), "@bob:remote.test", "invite", nil)))
	invite := func() ([]byte, error) {
		return client.Invite(ctx, "remote.test", room.ID, inv.EventID(), room.Rules.ID, inv.JSON(), []json.RawMessage{room.CreateEvent().JSON()})
	}
	returned := must[[]byte](t)(invite())
	ev, err := CheckInviteResponse(ctx, room.Rules, inv, returned, remote.Network)
	if err != nil || ev.EventID() != inv.EventID() {
		t.Fatal(err)
	}
	// A server that changes the content (and signs its version).
	remote.Handle(federationtest.Invite, func(req *federationtest.Request) federationtest.Response {
		resp := remote.Default(req)
		body, _ := json.Marshal(resp.Body)
		body, _ = sjson.SetBytes(body, "event.content.displayname", "Mallory")
		return federationtest.JSON(200, json.RawMessage(body))
	})
	if _, err := CheckInviteResponse(ctx, room.Rules, inv, must[[]byte](t)(invite()), remote.Network); !errors.Is(err, ErrBadResponse) {
		t.Fatalf("changed invite: %v", err)
	}
	// A server that returns the event without its signature.
	remote.Handle(federationtest.Invite, func(req *federationtest.Request) federationtest.Response {
		return federationtest.JSON(200, map[string]any{"event": json.RawMessage(inv.JSON())})
	})
	if _, err := CheckInviteResponse(ctx, room.Rules, inv, must[[]byte](t)(invite()), remote.Network); !errors.Is(err, ErrSignature) {
		t.Fatalf("unsigned invite: %v", err)
	}
}

// TestKitKnock knocks on a room of the kit's fake server.
func TestKitKnock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	room := roomtest.New(t, roomtest.Options{Version: "10", Creator: "@alice:remote.test", JoinRule: "knock"})
	remote := federationtest.New(t, federationtest.Options{Name: "remote.test", Rooms: []*roomtest.Room{room}})
	req := KnockRequest{Client: remote.Network.FederationClient("hs.test", nil), Servers: []string{"remote.test"}, RoomID: room.ID,
		UserID: "@bob:hs.test", ServerName: "hs.test", Key: remote.Network.Keys.Key("hs.test")}
	k, err := PerformKnock(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if k.Server != "remote.test" || len(k.RoomState) == 0 || k.Event.Membership() != Knock {
		t.Fatalf("%+v", k)
	}
	if m := room.State().Member("@bob:hs.test"); m == nil || m.EventID() != k.Event.EventID() {
		t.Fatal("the fake resident did not receive the knock")
	}
	// A knock answer without the create event.
	remote.Handle(federationtest.SendKnock, func(req *federationtest.Request) federationtest.Response {
		return federationtest.JSON(200, map[string]any{"knock_room_state": []any{}})
	})
	req.UserID = "@carol:hs.test"
	if _, err := PerformKnock(ctx, req); !errors.Is(err, ErrBadResponse) {
		t.Fatalf("no create: %v", err)
	}
	// A room version without knocking: the resident refuses make_knock.
	old := roomtest.New(t, roomtest.Options{Version: "6", Creator: "@alice:remote.test", Keys: room.Keys})
	remote.AddRoom(old)
	req.RoomID, req.UserID = old.ID, "@dave:hs.test"
	_, err = PerformKnock(ctx, req)
	var fe *federation.Error
	if !errors.As(err, &fe) || fe.Status != 403 || len(remote.Requests(federationtest.SendKnock)) != 2 {
		t.Fatalf("knock in a version 6 room: %v", err)
	}
}
