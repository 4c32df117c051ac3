package stateres_test

import (
	"context"
	"fmt"
	"maps"
	"testing"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/roomtest"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
	"github.com/gomatrixlib/gomatrixlib/stateres"
)

// answeredIndex is an AuthChainIndex whose answers for one resolution were
// worked out in advance, as a database with a chain index would look them
// up: the benchmark then measures the resolution, not the index.
type answeredIndex struct {
	room               *roomtest.Room
	diff, sub, inChain []string
}

func (a answeredIndex) Events(ctx context.Context, ids []string) ([]*event.PDU, error) {
	return a.room.Events(ctx, ids)
}
func (a answeredIndex) AuthChainDifference(context.Context, [][]string) ([]string, error) {
	return a.diff, nil
}
func (a answeredIndex) ConflictedSubgraph(context.Context, []string) ([]string, error) {
	return a.sub, nil
}
func (a answeredIndex) InAuthChains(context.Context, []string, []string) ([]string, error) {
	return a.inChain, nil
}

// BenchmarkResolveLargeRoomSmallConflict resolves the common case on a
// large room: two state sets of M members that differ in one key (the
// topic), with the auth chains indexed by the provider. The work is the
// partition of the sets and the result map; the conflict loads a handful
// of events.
func BenchmarkResolveLargeRoomSmallConflict(b *testing.B) {
	rules := latest(b, roomversion.StateResV2)
	for _, m := range []int{1000, 20000} {
		b.Run(fmt.Sprintf("M=%d", m), func(b *testing.B) {
			room, sets := topicFork(b, rules, m)
			// The two topics share their auth chain: the difference is
			// empty, and no power event is conflicted (the result is
			// checked against a resolution without the index below).
			p := answeredIndex{room: room}
			ctx := context.Background()
			want, err := stateres.Resolve(ctx, rules, sets, room)
			if err != nil {
				b.Fatal(err)
			}
			got, err := stateres.Resolve(ctx, rules, sets, p)
			if err != nil {
				b.Fatal(err)
			}
			if !maps.Equal(got, want) {
				b.Fatalf("index answers give another result")
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := stateres.Resolve(ctx, rules, sets, p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
