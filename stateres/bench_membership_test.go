package stateres_test

import (
	"context"
	"fmt"
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
				peak := peakHeap(func() {
					if _, err := stateres.Resolve(ctx, rules, f.sets, f.room); err != nil {
						b.Fatal(err)
					}
				})
				reportCPU(b, func() {
					if _, err := stateres.Resolve(ctx, rules, f.sets, f.room); err != nil {
						b.Fatal(err)
					}
				})
				b.ReportMetric(float64(peak)/(1<<20), "peak-MB")
			})
		}
	}
}
