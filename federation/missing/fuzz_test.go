package missing

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/roomtest"
)

// bytesClient answers every request with the same bytes.
type bytesClient []byte

func (b bytesClient) GetMissingEvents(context.Context, string, string, []string, []string, int) (json.RawMessage, error) {
	return json.RawMessage(b), nil
}
func (b bytesClient) StateIDs(context.Context, string, string, string) (json.RawMessage, error) {
	return json.RawMessage(b), nil
}
func (b bytesClient) GetEvent(context.Context, string, string) (json.RawMessage, error) {
	return json.RawMessage(b), nil
}
func (b bytesClient) State(context.Context, string, string, string) (json.RawMessage, error) {
	return json.RawMessage(b), nil
}

func FuzzAnswers(f *testing.F) {
	r := roomtest.New(f, roomtest.Options{Version: "10", Creator: "@alice:a.test"})
	last := r.Message(r.Creator(), "x")
	var evs []json.RawMessage
	var ids []string
	for _, ev := range r.All() {
		evs = append(evs, ev.JSON())
		ids = append(ids, ev.EventID())
	}
	seed, _ := json.Marshal(map[string]any{"events": evs, "pdu_ids": ids, "auth_chain_ids": []string{}, "pdus": evs})
	f.Add(seed)
	f.Add([]byte(`{"events":[{}],"pdu_ids":[1]}`))
	unknown := func(_ context.Context, ids []string) ([]bool, error) { return make([]bool, len(ids)), nil }
	none := func(_ context.Context, ids []string) ([]*event.PDU, error) { return make([]*event.PDU, len(ids)), nil }
	f.Fuzz(func(t *testing.T, body []byte) {
		lim := Limits{PerRequest: 5, MaxEvents: 20, MaxRounds: 3, MaxState: 50, MaxFetches: 5}
		res, err := Walk(context.Background(), bytesClient(body), WalkRequest{Rules: r.Rules, Event: last, Servers: []string{"a.test"}, Known: unknown, Limits: lim})
		if err == nil {
			if len(res.Events) > lim.MaxEvents {
				t.Fatalf("%d events over the limit", len(res.Events))
			}
			for _, ev := range res.Events {
				if ev.RoomID() != r.ID {
					t.Fatal("event of another room")
				}
			}
		} else if !errors.Is(err, ErrNoServer) {
			t.Fatalf("untyped error %v", err)
		}
		st, err := Fetch(context.Background(), bytesClient(body), FetchRequest{Rules: r.Rules, RoomID: r.ID, EventID: last.EventID(), Server: "a.test", Have: none, Limits: lim})
		if err == nil && len(st.State) > lim.MaxState {
			t.Fatal("state over the limit")
		}
	})
}
