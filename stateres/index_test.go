package stateres_test

import (
	"context"
	"fmt"
	"maps"
	"testing"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/eventauth"
	"github.com/gomatrixlib/gomatrixlib/roomtest"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
	"github.com/gomatrixlib/gomatrixlib/stateres"
	"github.com/gomatrixlib/gomatrixlib/stateres/roomgen"
)

// countingProvider counts the events the resolution asks for.
type countingProvider struct {
	stateres.Provider
	n *int
}

func (p countingProvider) Events(ctx context.Context, ids []string) ([]*event.PDU, error) {
	*p.n += len(ids)
	return p.Provider.Events(ctx, ids)
}

// countingIndex is a countingProvider whose provider is indexed.
type countingIndex struct {
	countingProvider
	indexedProvider
}

func (p countingIndex) Events(ctx context.Context, ids []string) ([]*event.PDU, error) {
	return p.countingProvider.Events(ctx, ids)
}

// With an AuthChainIndex, a small conflict in a long room loads a handful of
// events; without one, the auth chains of the whole state are loaded.
func TestIndexLoadsOnlyTheConflict(t *testing.T) {
	t.Parallel()
	for _, rules := range algorithms(t) {
		if rules.StateResolution == roomversion.StateResV1 {
			continue
		}
		t.Run(rules.StateResolution.String(), func(t *testing.T) {
			t.Parallel()
			room, sets := topicFork(t, rules, 300)
			p := mapProvider{}
			for _, ev := range room.All() {
				p[ev.EventID()] = ev
			}
			var full, indexed int
			want, err := stateres.Resolve(context.Background(), rules, sets, countingProvider{p, &full})
			if err != nil {
				t.Fatal(err)
			}
			got, err := stateres.Resolve(context.Background(), rules, sets,
				countingIndex{countingProvider{p, &indexed}, indexedProvider{p}})
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, want) {
				t.Fatalf("index mode result differs")
			}
			if full < 300 || indexed > 10 {
				t.Fatalf("events loaded: %d without index, %d with; want >= 300 and <= 10", full, indexed)
			}
		})
	}
}

// topicFork builds a room of members users (public join rules, explicit
// power levels) that forks, then sets a different topic on each branch: a
// large state with one conflicted key whose events share their auth chain.
// It returns the room and the two branches' states.
func topicFork(tb testing.TB, rules roomversion.Rules, members int) (*roomtest.Room, []map[eventauth.StateKey]string) {
	tb.Helper()
	room := roomtest.New(tb, roomtest.Options{Version: rules.ID, Creator: roomgen.Creator})
	for i := range members {
		room.Join(roomgen.User(i))
	}
	other := room.Fork()
	for i, br := range []*roomtest.Branch{room.Branch, other} {
		br.SetState(room.Creator(), "m.room.topic", "", map[string]any{"topic": fmt.Sprint(i)})
	}
	return room, []map[eventauth.StateKey]string{room.StateIDs(), other.StateIDs()}
}
