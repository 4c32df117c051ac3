package stateres_test

import (
	"context"
	"errors"
	"maps"
	"math/rand/v2"
	"testing"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/eventauth"
	"github.com/gomatrixlib/gomatrixlib/roomtest"
	"github.com/gomatrixlib/gomatrixlib/stateres"
	"github.com/gomatrixlib/gomatrixlib/stateres/roomgen"
)

// dropProvider hides some events of a room.
type dropProvider struct {
	room *roomgen.Room
	drop map[string]bool
}

func (p dropProvider) Events(ctx context.Context, ids []string) ([]*event.PDU, error) {
	out, err := p.room.Events(ctx, ids)
	for i, id := range ids {
		if p.drop[id] {
			out[i] = nil
		}
	}
	return out, err
}

// swapProvider answers every lookup with the same event.
type swapProvider struct{ ev *event.PDU }

func (p swapProvider) Events(_ context.Context, ids []string) ([]*event.PDU, error) {
	out := make([]*event.PDU, len(ids))
	for i := range out {
		out[i] = p.ev
	}
	return out, nil
}

// countProvider counts how often each event is asked for.
type countProvider struct {
	room  *roomgen.Room
	asked map[string]int
}

func (p countProvider) Events(ctx context.Context, ids []string) ([]*event.PDU, error) {
	for _, id := range ids {
		p.asked[id]++
	}
	return p.room.Events(ctx, ids)
}

type failProvider struct{}

var errProvider = errors.New("provider down")

func (failProvider) Events(context.Context, []string) ([]*event.PDU, error) { return nil, errProvider }

func TestBadInput(t *testing.T) {
	t.Parallel()
	for _, alg := range algorithms(t) {
		rules := alg
		t.Run(rules.StateResolution.String(), func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(3, 4))
			room, sets, err := roomgen.Random(rules, rng, roomgen.RandomOptions{Events: 15})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			// Make sure the sets conflict, so that events are loaded.
			sets[1] = maps.Clone(sets[1])
			sets[1][eventauth.StateKey{Type: "m.room.topic"}] = sets[0][eventauth.StateKey{Type: "m.room.create"}]
			check := func(name string, err, want error) {
				t.Helper()
				if !errors.Is(err, want) {
					t.Errorf("%s: err = %v, want %v", name, err, want)
				}
			}
			_, err = stateres.Resolve(ctx, rules, nil, room)
			check("no sets", err, stateres.ErrBadInput)
			_, err = stateres.Resolve(ctx, rules, sets, nil)
			check("nil provider", err, stateres.ErrBadInput)
			// The create event is now under two keys: unconflicted under its
			// own, conflicted under the topic's. It is loaded once.
			counted := countProvider{room: room, asked: map[string]int{}}
			_, err = stateres.Resolve(ctx, rules, sets, counted)
			check("entry of the wrong type", err, stateres.ErrBadInput)
			for id, n := range counted.asked {
				if n > 1 {
					t.Errorf("event %s asked for %d times", id, n)
				}
			}

			room2, sets2, err := roomgen.Forked(rules, 20, 3)
			if err != nil {
				t.Fatal(err)
			}
			drop := map[string]bool{}
			for _, ev := range room2.All()[:1] {
				drop[ev.EventID()] = true
			}
			_, err = stateres.Resolve(ctx, rules, sets2, dropProvider{room2, drop})
			check("missing create event", err, stateres.ErrMissingEvent)
			_, err = stateres.Resolve(ctx, rules, sets2, swapProvider{room2.All()[0]})
			check("provider returns the wrong event", err, stateres.ErrBadInput)
			_, err = stateres.Resolve(ctx, rules, sets2, failProvider{})
			check("provider error", err, errProvider)
			_, err = stateres.Resolver{MaxEvents: 5}.Resolve(ctx, rules, sets2, room2)
			check("too many events", err, stateres.ErrTooManyEvents)
			// With an index the graph reserves room for the index's answer,
			// within the limit.
			_, err = stateres.Resolver{MaxEvents: 5}.Resolve(ctx, rules, sets2, walkedIndex{room2})
			check("too many events, indexed", err, stateres.ErrTooManyEvents)
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			_, err = stateres.Resolve(cctx, rules, sets2, room2)
			check("cancelled", err, context.Canceled)
			// Events of another room.
			other := roomtest.New(t, roomtest.Options{Version: rules.ID, Creator: roomgen.Creator})
			other.SetState(roomgen.Creator, "m.room.topic", "", map[string]any{"topic": "x"})
			mixedSets := []map[eventauth.StateKey]string{sets2[0], other.StateIDs()}
			_, err = stateres.Resolve(ctx, rules, mixedSets, mixProvider{room2, other})
			check("events of two rooms", err, stateres.ErrBadInput)
		})
	}
}

// mixProvider serves the events of two rooms.
type mixProvider struct {
	a, b interface{ Event(id string) *event.PDU }
}

func (p mixProvider) Events(_ context.Context, ids []string) ([]*event.PDU, error) {
	out := make([]*event.PDU, len(ids))
	for i, id := range ids {
		if ev := p.a.Event(id); ev != nil {
			out[i] = ev
		} else {
			out[i] = p.b.Event(id)
		}
	}
	return out, nil
}

// rejectingProvider marks some events as rejected.
type rejectingProvider struct {
	mapProvider
	rejected map[string]bool
}

func (p rejectingProvider) Rejected(id string) bool { return p.rejected[id] }

// TestRejectedAuthEventNotUsed: in reset_admin_left (v2.1) the power levels
// events pass only through the auth-events fallback for Alice's join. With
// that join marked rejected the fallback may not use it, both are rejected
// and the room has no power levels.
func TestRejectedAuthEventNotUsed(t *testing.T) {
	t.Parallel()
	v, rules, p := loadVector(t, "testdata/reset_admin_left_v2.1.json")
	var aliceJoin string
	for id, ev := range p {
		if sk, _ := ev.StateKey(); ev.Type() == "m.room.member" && sk == roomgen.Creator && ev.Membership() == "join" {
			aliceJoin = id
		}
	}
	if aliceJoin == "" {
		t.Fatal("no join of the creator in the vector")
	}
	sets := []map[eventauth.StateKey]string{fromTriples(v.StateSets[0]), fromTriples(v.StateSets[1])}
	pl := eventauth.StateKey{Type: "m.room.power_levels"}
	got, err := stateres.Resolve(context.Background(), rules, sets, rejectingProvider{p, nil})
	if err != nil {
		t.Fatal(err)
	}
	if got[pl] != v.Names["PL1"] {
		t.Fatalf("without rejections: power levels %q, want PL1", got[pl])
	}
	got, err = stateres.Resolve(context.Background(), rules, sets, rejectingProvider{p, map[string]bool{aliceJoin: true}})
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := got[pl]; ok {
		t.Fatalf("with the creator's join rejected: power levels %q, want none", id)
	}
}
