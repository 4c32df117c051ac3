package missing

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/federation/federationtest"
	"github.com/gomatrixlib/gomatrixlib/roomtest"
)

// TestKitWalkAndFetch fills a gap and fetches the state at an event from
// the test kit's fake homeserver, through a real federation.Client.
func TestKitWalkAndFetch(t *testing.T) {
	t.Parallel()
	room := roomtest.New(t, roomtest.Options{Version: "11", Creator: "@alice:remote.test"})
	var order []string
	for _, ev := range room.All() {
		order = append(order, ev.EventID())
	}
	have := len(order)
	for i := range 25 {
		order = append(order, room.Message(room.Creator(), fmt.Sprint(i)).EventID())
	}
	remote := federationtest.New(t, federationtest.Options{Name: "remote.test", Rooms: []*roomtest.Room{room}})
	client := remote.Network.FederationClient("hs.test", nil)
	last := room.Event(order[len(order)-1])
	known := map[string]bool{}
	for _, id := range order[:have] {
		known[id] = true
	}
	res, err := Walk(context.Background(), client, WalkRequest{Rules: room.Rules, Event: last, Earliest: []string{order[have-1]},
		Servers: []string{"remote.test"}, Limits: Limits{PerRequest: 10},
		Known: func(_ context.Context, ids []string) ([]bool, error) {
			out := make([]bool, len(ids))
			for i, id := range ids {
				out[i] = known[id]
			}
			return out, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range res.Events {
		got = append(got, ev.EventID())
	}
	if len(res.Missing) != 0 || !slices.Equal(got, order[have:len(order)-1]) {
		t.Fatalf("missing %v, got %d of %d events", res.Missing, len(got), len(order)-have-1)
	}
	if n := len(remote.Requests(federationtest.GetMissingEvents)); n < 3 {
		t.Fatalf("%d get_missing_events requests for 24 events 10 at a time", n)
	}

	st, err := Fetch(context.Background(), client, FetchRequest{Rules: room.Rules, RoomID: room.ID, EventID: last.EventID(), Server: "remote.test",
		Have: func(_ context.Context, ids []string) ([]*event.PDU, error) { return make([]*event.PDU, len(ids)), nil }})
	if err != nil {
		t.Fatal(err)
	}
	want := roomtest.StateIDs(room.StateBefore(last.EventID()))
	if len(st.State) != len(want) || len(st.Fetched) != len(want) {
		t.Fatalf("%d entries, %d fetched, want %d", len(st.State), len(st.Fetched), len(want))
	}
	for k, id := range want {
		if st.State[k] != id {
			t.Fatalf("entry %v: %s, want %s", k, st.State[k], id)
		}
	}
}
