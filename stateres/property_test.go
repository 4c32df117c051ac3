package stateres_test

import (
	"context"
	"maps"
	"math/rand/v2"
	"testing"

	"github.com/gomatrixlib/gomatrixlib/eventauth"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
	"github.com/gomatrixlib/gomatrixlib/stateres"
	"github.com/gomatrixlib/gomatrixlib/stateres/roomgen"
)

// Properties over random forked rooms in every room version: a single
// state set resolves to itself, identical sets resolve to that set, and the
// result does not depend on the order of the state sets.
func TestProperties(t *testing.T) {
	t.Parallel()
	for _, rules := range roomversion.All() {
		t.Run(rules.ID, func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(7, uint64(len(rules.ID))+uint64(rules.StateResolution)))
			conflicts := 0
			for round := range 12 {
				room, sets, err := roomgen.Random(rules, rng, roomgen.RandomOptions{Branches: 2 + round%2, Events: 25})
				if err != nil {
					t.Fatal(err)
				}
				ctx := context.Background()
				for _, s := range sets {
					got, err := stateres.Resolve(ctx, rules, []map[eventauth.StateKey]string{s}, room)
					if err != nil {
						t.Fatal(err)
					}
					if !maps.Equal(got, s) {
						t.Fatalf("round %d: single set does not resolve to itself", round)
					}
					got, err = stateres.Resolve(ctx, rules, []map[eventauth.StateKey]string{s, maps.Clone(s)}, room)
					if err != nil {
						t.Fatal(err)
					}
					if !maps.Equal(got, s) {
						t.Fatalf("round %d: two equal sets do not resolve to the set", round)
					}
				}
				want, err := stateres.Resolve(ctx, rules, sets, room)
				if err != nil {
					t.Fatal(err)
				}
				if !maps.Equal(want, sets[0]) {
					conflicts++
				}
				for perm := range 3 {
					shuffled := append([]map[eventauth.StateKey]string(nil), sets...)
					rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
					got, err := stateres.Resolve(ctx, rules, shuffled, room)
					if err != nil {
						t.Fatal(err)
					}
					if !maps.Equal(got, want) {
						t.Fatalf("round %d perm %d: result depends on the order of the state sets", round, perm)
					}
				}
			}
			if conflicts == 0 {
				t.Fatal("no round produced a resolution that differs from the first set")
			}
		})
	}
}
