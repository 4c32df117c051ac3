package membership_test

import (
	"context"
	"errors"
	"testing"

	"github.com/gomatrixlib/gomatrixlib/eventauth"
	"github.com/gomatrixlib/gomatrixlib/federation/federationtest"
	"github.com/gomatrixlib/gomatrixlib/federation/membership"
	"github.com/gomatrixlib/gomatrixlib/roomtest"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
	"github.com/gomatrixlib/gomatrixlib/signing"
)

// TestPerformJoinAgainstFakeServer joins a room of every version held by a
// fake homeserver (package federationtest): the kit's answers pass the
// joining side's checks. A second resident answers send_join with forged
// state events; PerformJoin drops each of them and keeps the rest.
func TestPerformJoinAgainstFakeServer(t *testing.T) {
	t.Parallel()
	var all []string
	for _, r := range roomversion.All() {
		all = append(all, r.ID)
	}
	for _, rules := range roomversion.All() {
		t.Run("v"+rules.ID, func(t *testing.T) {
			t.Parallel()
			room := roomtest.New(t, roomtest.Options{Version: rules.ID, Creator: "@alice:remote.test"})
			net := federationtest.NewNetwork(t, room.Keys)
			honest := federationtest.New(t, federationtest.Options{Name: "remote.test", Rooms: []*roomtest.Room{room}, Network: net})
			hostile := federationtest.New(t, federationtest.Options{Name: "hostile.test", Rooms: []*roomtest.Room{room}, Network: net})
			var forged []*roomtest.Forged
			for _, f := range []roomtest.Forgery{roomtest.BadSignature, roomtest.WrongServerSignature, roomtest.ForeignSender} {
				forged = append(forged, room.Forge(f, roomtest.Event{Type: "m.room.topic", Sender: room.Creator(),
					StateKey: roomtest.Str(""), Content: map[string]any{"topic": f.String()}}))
			}
			hostile.Handle(federationtest.SendJoin, func(req *federationtest.Request) federationtest.Response {
				resp := hostile.Default(req)
				if body, ok := resp.Body.(*federationtest.SendJoinResponse); ok {
					for _, f := range forged {
						body.State = append(body.State, f.JSON)
					}
				}
				return resp
			})

			join := func(server, user string) *membership.Joined {
				t.Helper()
				key := net.Keys.Key("hs.test")
				joined, err := membership.PerformJoin(context.Background(), membership.JoinRequest{
					Client: net.FederationClient("hs.test", key), Servers: []string{server}, RoomID: room.ID,
					UserID: user, ServerName: "hs.test", Key: key, Keys: net, Supported: all})
				if err != nil {
					t.Fatalf("join through %s: %v", server, err)
				}
				return joined
			}
			got := join("remote.test", "@bob:hs.test")
			if len(got.Dropped) != 0 || len(got.StateEvents) != 4 || got.Rules.ID != rules.ID {
				t.Fatalf("honest answer: %d state events, dropped %v", len(got.StateEvents), got.Dropped)
			}
			if room.State().Member("@bob:hs.test") == nil || len(honest.Requests(federationtest.SendJoin)) != 1 {
				t.Fatal("the fake server did not take the join")
			}

			got = join("hostile.test", "@carol:hs.test")
			if len(got.Dropped) != len(forged) {
				t.Fatalf("hostile answer: dropped %v, want %d forged events", got.Dropped, len(forged))
			}
			for _, d := range got.Dropped {
				if !errors.Is(d.Err, signing.ErrBadSignature) && !errors.Is(d.Err, signing.ErrMissingSignature) {
					t.Errorf("dropped %s: %v", d.EventID, d.Err)
				}
			}
			if got.State[eventauth.StateKey{Type: "m.room.topic"}] != nil || len(got.StateEvents) != 5 {
				t.Fatalf("hostile answer: %d state events kept, want the 5 genuine ones", len(got.StateEvents))
			}
		})
	}
}
