package stateres_test

import (
	"context"
	"fmt"
	"github.com/gomatrixlib/gomatrixlib/internal/measure"
	"maps"
	"testing"

	"github.com/gomatrixlib/gomatrixlib/roomversion"
	"github.com/gomatrixlib/gomatrixlib/stateres"
	"github.com/gomatrixlib/gomatrixlib/stateres/roomgen"
)

var membershipCache = map[string]forkedRoom{}

func membershipFork(tb testing.TB, rules roomversion.Rules, k int) forkedRoom {
	tb.Helper()
	key := fmt.Sprint(rules.ID, "/", k)
	if f, ok := membershipCache[key]; ok {
		return f
	}
	room, sets, err := roomgen.MembershipFork(rules, k)
	if err != nil {
		tb.Fatal(err)
	}
	f := forkedRoom{room, sets}
	membershipCache[key] = f
	return f
}

// BenchmarkResolveMembershipFork resolves the two state sets of
// roomgen.MembershipFork: K joined members, each changing membership once
// on each branch (2K conflicted member events, half of them kicks and bans,
// so power events), and one power levels change per branch. The auth
// chains of every event in the state sets are loaded (no AuthChainIndex).
// peak-MB is the largest growth of the live heap during one resolution.
func BenchmarkResolveMembershipFork(b *testing.B) {
	for _, alg := range []roomversion.StateResAlgorithm{roomversion.StateResV2, roomversion.StateResV2_1} {
		rules := latest(b, alg)
		for _, k := range []int{5000, 50000} {
			b.Run(fmt.Sprintf("%v/K=%d", alg, k), func(b *testing.B) {
				f := membershipFork(b, rules, k)
				ctx := context.Background()
				b.ReportAllocs()
				peak := measure.PeakHeap(func() {
					if _, err := stateres.Resolve(ctx, rules, f.sets, f.room); err != nil {
						b.Fatal(err)
					}
				})
				measure.ReportCPU(b, func() {
					if _, err := stateres.Resolve(ctx, rules, f.sets, f.room); err != nil {
						b.Fatal(err)
					}
				})
				b.ReportMetric(float64(peak)/(1<<20), "peak-MB")
			})
		}
	}
}

// recordedIndex answers the AuthChainIndex questions of walkedIndex once
// and then replays the answers, as a provider that keeps auth chains
// indexed (a database with a chain index) would look them up: the
// resolution is measured, not the index. It serves one resolution's
// questions (the same state sets every time).
type recordedIndex struct {
	walkedIndex
	diff, sub, inChain *[]string
}

func newRecordedIndex(room *roomgen.Room) recordedIndex {
	return recordedIndex{walkedIndex{room}, new([]string), new([]string), new([]string)}
}

func (x recordedIndex) AuthChainDifference(ctx context.Context, sets [][]string) ([]string, error) {
	if *x.diff == nil {
		d, err := x.walkedIndex.AuthChainDifference(ctx, sets)
		*x.diff = append([]string{}, d...)
		return d, err
	}
	return *x.diff, nil
}

func (x recordedIndex) ConflictedSubgraph(ctx context.Context, conflicted []string) ([]string, error) {
	if *x.sub == nil {
		s, err := x.walkedIndex.ConflictedSubgraph(ctx, conflicted)
		*x.sub = append([]string{}, s...)
		return s, err
	}
	return *x.sub, nil
}

func (x recordedIndex) InAuthChains(ctx context.Context, of, candidates []string) ([]string, error) {
	if *x.inChain == nil {
		s, err := x.walkedIndex.InAuthChains(ctx, of, candidates)
		*x.inChain = append([]string{}, s...)
		return s, err
	}
	return *x.inChain, nil
}

// BenchmarkResolveMembershipForkIndexed is BenchmarkResolveMembershipFork
// with the auth chain questions answered by the provider (recordedIndex),
// the counterpart of handing gomatrixserverlib the auth chains
// precomputed: the events of the state sets are loaded as needed, their
// auth chains are not walked. The result is checked against the
// resolution that loads the chains.
func BenchmarkResolveMembershipForkIndexed(b *testing.B) {
	for _, alg := range []roomversion.StateResAlgorithm{roomversion.StateResV2, roomversion.StateResV2_1} {
		rules := latest(b, alg)
		for _, k := range []int{5000, 50000} {
			b.Run(fmt.Sprintf("%v/K=%d", alg, k), func(b *testing.B) {
				f := membershipFork(b, rules, k)
				ctx := context.Background()
				want, err := stateres.Resolve(ctx, rules, f.sets, f.room)
				if err != nil {
					b.Fatal(err)
				}
				x := newRecordedIndex(f.room)
				got, err := stateres.Resolve(ctx, rules, f.sets, x)
				if err != nil {
					b.Fatal(err)
				}
				if !maps.Equal(got, want) {
					b.Fatal("the recorded index gives another state than loading the chains")
				}
				b.ReportAllocs()
				peak := measure.PeakHeap(func() {
					if _, err := stateres.Resolve(ctx, rules, f.sets, x); err != nil {
						b.Fatal(err)
					}
				})
				measure.ReportCPU(b, func() {
					if _, err := stateres.Resolve(ctx, rules, f.sets, x); err != nil {
						b.Fatal(err)
					}
				})
				b.ReportMetric(float64(peak)/(1<<20), "peak-MB")
			})
		}
	}
}
