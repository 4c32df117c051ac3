package stateres_test

import (
	"context"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/eventauth"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
	"github.com/gomatrixlib/gomatrixlib/stateres"
	"github.com/gomatrixlib/gomatrixlib/stateres/roomgen"
)

// walkedIndex answers the AuthChainIndex questions for a generated room by
// walking auth_events from scratch for every question: a slow, independent
// route to the auth difference and the conflicted subgraph, against which
// the resolution that loads the auth chains itself is checked.
type walkedIndex struct{ room *roomgen.Room }

func (x walkedIndex) Events(ctx context.Context, ids []string) ([]*event.PDU, error) {
	return x.room.Events(ctx, ids)
}

func (x walkedIndex) chain(id string) map[string]bool {
	out := map[string]bool{}
	stack := slices.Clone(x.room.Event(id).AuthEventIDs())
	for len(stack) > 0 {
		a := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if !out[a] {
			out[a] = true
			stack = append(stack, x.room.Event(a).AuthEventIDs()...)
		}
	}
	return out
}

func (x walkedIndex) AuthChainDifference(_ context.Context, sets [][]string) ([]string, error) {
	return stateres.ChainDifference(sets, x.chain), nil
}

func (x walkedIndex) ConflictedSubgraph(_ context.Context, conflicted []string) ([]string, error) {
	isConflicted := map[string]bool{}
	above := map[string]bool{} // in the chain of a conflicted event
	for _, c := range conflicted {
		isConflicted[c] = true
		maps.Copy(above, x.chain(c))
	}
	var out []string
	for id := range above {
		for a := range x.chain(id) {
			if isConflicted[a] {
				out = append(out, id)
				break
			}
		}
	}
	return out, nil
}

func (x walkedIndex) InAuthChains(_ context.Context, of, candidates []string) ([]string, error) {
	all := map[string]bool{}
	for _, id := range of {
		maps.Copy(all, x.chain(id))
	}
	var out []string
	for _, c := range candidates {
		if all[c] {
			out = append(out, c)
		}
	}
	return out, nil
}

// TestLoadedChainsMatchWalkedIndex resolves membership forks and random
// forked rooms twice, once loading the auth chains (the engine's own auth
// difference, with the sets' events loaded as the partition meets them)
// and once with the answers of walkedIndex, in every room version with
// state resolution v2 or v2.1: the results must be equal.
func TestLoadedChainsMatchWalkedIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, rules := range roomversion.All() {
		if rules.StateResolution == roomversion.StateResV1 {
			continue
		}
		t.Run(rules.ID, func(t *testing.T) {
			t.Parallel()
			type room struct {
				r    *roomgen.Room
				sets []map[eventauth.StateKey]string
			}
			var rooms []room
			r, sets, err := roomgen.MembershipFork(rules, 24)
			if err != nil {
				t.Fatal(err)
			}
			rooms = append(rooms, room{r, sets})
			rng := rand.New(rand.NewPCG(20, uint64(len(rules.ID))))
			for round := range 6 {
				r, sets, err := roomgen.Random(rules, rng, roomgen.RandomOptions{Branches: 2 + round%2, Events: 30})
				if err != nil {
					t.Fatal(err)
				}
				rooms = append(rooms, room{r, sets})
			}
			for i, rm := range rooms {
				loaded, err := stateres.Resolve(ctx, rules, rm.sets, rm.r)
				if err != nil {
					t.Fatal(err)
				}
				indexed, err := stateres.Resolve(ctx, rules, rm.sets, walkedIndex{rm.r})
				if err != nil {
					t.Fatal(err)
				}
				if !maps.Equal(loaded, indexed) {
					t.Errorf("room %d: loading the chains and the walked index give different states", i)
				}
			}
			// The membership fork's resolution is neither branch's state.
			if got, _ := stateres.Resolve(ctx, rules, rooms[0].sets, rooms[0].r); maps.Equal(got, rooms[0].sets[0]) || maps.Equal(got, rooms[0].sets[1]) {
				t.Error("the membership fork resolves to one branch's state")
			}
		})
	}
}
