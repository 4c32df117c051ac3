package stateres

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestRadixOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	gens := map[string]func() uint64{
		"small":    func() uint64 { return uint64(rng.IntN(5)) },
		"wide":     rng.Uint64,
		"high":     func() uint64 { return uint64(rng.IntN(3)) << 60 },
		"constant": func() uint64 { return 42 },
		"signed":   func() uint64 { return signedKey(rng.Int64N(1<<40) - 1<<39) },
	}
	for name1, g1 := range gens {
		for name2, g2 := range gens {
			for _, n := range []int{0, 1, 2, 7, 3000} {
				k1, k2 := make([]uint64, n), make([]uint64, n)
				for i := range n {
					k1[i], k2[i] = g1(), g2()
				}
				got := radixOrder(n, k1, k2)
				want := make([]int32, n)
				for i := range want {
					want[i] = int32(i)
				}
				slices.SortStableFunc(want, func(a, b int32) int {
					return cmp.Or(cmp.Compare(k1[a], k1[b]), cmp.Compare(k2[a], k2[b]))
				})
				if !slices.Equal(got, want) {
					t.Fatalf("%s/%s n=%d: order differs from a stable comparison sort", name1, name2, n)
				}
			}
		}
	}
	// signedKey keeps the order of int64 values.
	vals := []int64{math.MinInt64, -1 << 53, -1, 0, 1, 1 << 53, math.MaxInt64}
	for i := 1; i < len(vals); i++ {
		if signedKey(vals[i-1]) >= signedKey(vals[i]) {
			t.Fatalf("signedKey(%d) >= signedKey(%d)", vals[i-1], vals[i])
		}
	}
}
