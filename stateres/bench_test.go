package stateres_test

import (
	"context"
	"fmt"
	"github.com/gomatrixlib/gomatrixlib/internal/measure"
	"hash/maphash"
	"math"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gomatrixlib/gomatrixlib/eventauth"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
	"github.com/gomatrixlib/gomatrixlib/stateres"
	"github.com/gomatrixlib/gomatrixlib/stateres/roomgen"
)

// latest returns the newest room version using algorithm alg.
func latest(tb testing.TB, alg roomversion.StateResAlgorithm) roomversion.Rules {
	tb.Helper()
	var out roomversion.Rules
	for _, r := range roomversion.All() {
		if r.StateResolution == alg {
			out = r
		}
	}
	if out.ID == "" {
		tb.Fatalf("no room version with %v", alg)
	}
	return out
}

type forkedRoom struct {
	room *roomgen.Room
	sets []map[eventauth.StateKey]string
}

var forkedCache sync.Map // key: rules ID + n

func forked(tb testing.TB, rules roomversion.Rules, n int) forkedRoom {
	tb.Helper()
	key := fmt.Sprint(rules.ID, "/", n)
	if v, ok := forkedCache.Load(key); ok {
		return v.(forkedRoom)
	}
	room, sets, err := roomgen.Forked(rules, n, 10)
	if err != nil {
		tb.Fatal(err)
	}
	f := forkedRoom{room, sets}
	forkedCache.Store(key, f)
	return f
}

// BenchmarkResolve resolves synthetic forked rooms with N events after the
// fork (every tenth a power levels change), for v2 and v2.1. The peak-MB
// metric is the largest live heap seen while resolving, above the heap
// before.
func BenchmarkResolve(b *testing.B) {
	for _, alg := range []roomversion.StateResAlgorithm{roomversion.StateResV2, roomversion.StateResV2_1} {
		rules := latest(b, alg)
		for _, n := range []int{100, 1000, 10000, 100000} {
			b.Run(fmt.Sprintf("%v/N=%d", alg, n), func(b *testing.B) {
				f := forked(b, rules, n)
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

// BenchmarkResolveSameFootprint resolves forked rooms of N = 1000 and
// 10000 with the same amount of room data in memory: 10000/N distinct
// rooms taken in turn. BenchmarkResolve repeats one room, so a small room
// stays in the CPU's L2 cache between iterations while a large one cannot;
// here both sizes read their events from the same cache level, so the
// ratio of the two times shows how the algorithm itself grows.
func BenchmarkResolveSameFootprint(b *testing.B) {
	rules := latest(b, roomversion.StateResV2)
	const total = 10000
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			rooms := make([]forkedRoom, total/n)
			for i := range rooms {
				room, sets, err := roomgen.Forked(rules, n, 10)
				if err != nil {
					b.Fatal(err)
				}
				rooms[i] = forkedRoom{room, sets}
			}
			ctx := context.Background()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				f := rooms[i%len(rooms)]
				i++
				if _, err := stateres.Resolve(ctx, rules, f.sets, f.room); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkResolveGrowth measures the growth exponent k (time ratio =
// 10^k) from N=1000 to N=10000 on the rooms of BenchmarkResolve (v2) with
// paired samples: each iteration is a round that times 100 resolutions of
// the small room and 10 of the large one back to back (alternating which
// goes first), so both sizes see the same state of a noisy host. It
// reports the medians of the rounds' times and of their exponents; run it
// with -benchtime 20x or more. BenchmarkResolve measures each size in its
// own block of iterations, minutes apart under -count, so its ratio also
// carries the host's drift between them.
func BenchmarkResolveGrowth(b *testing.B) {
	rules := latest(b, roomversion.StateResV2)
	small, large := forked(b, rules, 1000), forked(b, rules, 10000)
	ctx := context.Background()
	timed := func(f forkedRoom, k int) float64 {
		start := time.Now()
		for range k {
			if _, err := stateres.Resolve(ctx, rules, f.sets, f.room); err != nil {
				b.Fatal(err)
			}
		}
		return float64(time.Since(start)) / float64(k)
	}
	timed(small, 20) // warm up both
	timed(large, 2)
	var ts, tl, ks []float64
	for round := 0; b.Loop(); round++ {
		var s, l float64
		if round%2 == 0 {
			s, l = timed(small, 100), timed(large, 10)
		} else {
			l, s = timed(large, 10), timed(small, 100)
		}
		ts, tl, ks = append(ts, s), append(tl, l), append(ks, math.Log10(l/s))
	}
	b.ReportMetric(median(ts)/1e6, "N1000-ms")
	b.ReportMetric(median(tl)/1e6, "N10000-ms")
	b.ReportMetric(median(ks), "k")
}

func median(xs []float64) float64 {
	xs = slices.Clone(xs)
	slices.Sort(xs)
	return xs[len(xs)/2]
}

// BenchmarkReadFloor reads, once, what any resolver of the forked rooms of
// BenchmarkResolve has to: every state set entry (key and event ID), every
// event through the provider, and each event's ID, room, sender, type,
// state key, auth event IDs and content. No resolving: its growth from
// N=1000 to N=10000 is the floor that reading the caller's data sets on
// the machine it runs on.
func BenchmarkReadFloor(b *testing.B) {
	rules := latest(b, roomversion.StateResV2)
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			f := forked(b, rules, n)
			seed := maphash.MakeSeed()
			ctx := context.Background()
			var sum uint64
			for b.Loop() {
				var ids []string
				for _, s := range f.sets {
					for k, id := range s {
						sum += maphash.String(seed, k.Type) ^ maphash.String(seed, k.StateKey) ^ maphash.String(seed, id)
						ids = append(ids, id)
					}
				}
				evs, err := f.room.Events(ctx, ids)
				if err != nil {
					b.Fatal(err)
				}
				for _, p := range evs {
					sk, _ := p.StateKey()
					sum += maphash.String(seed, p.EventID()) ^ maphash.String(seed, p.RoomID()) ^
						maphash.String(seed, p.Sender()) ^ maphash.String(seed, p.Type()) ^
						maphash.String(seed, sk) ^ uint64(p.Content()[0])
					for _, a := range p.AuthEventIDs() {
						sum += maphash.String(seed, a)
					}
				}
			}
			if sum == 0 {
				b.Fatal("read nothing")
			}
		})
	}
}

// BenchmarkForkedRoomHeap builds the forked room of BenchmarkResolve with
// N=1000 and reports the heap it keeps per event (events, the generator's
// maps and the state sets), after a GC. It is what the caller's data
// weighs in the resolution benchmarks.
func BenchmarkForkedRoomHeap(b *testing.B) {
	rules := latest(b, roomversion.StateResV2)
	var total, events float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		room, sets, err := roomgen.Forked(rules, 1000, 10)
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		total += float64(after.HeapAlloc) - float64(before.HeapAlloc)
		events += float64(len(room.All()))
		runtime.KeepAlive(sets)
	}
	b.ReportMetric(total/events, "heap-B/event")
}

// algorithms returns one room version per state resolution algorithm.
func algorithms(tb testing.TB) []roomversion.Rules {
	var out []roomversion.Rules
	seen := map[roomversion.StateResAlgorithm]bool{}
	for _, r := range roomversion.All() {
		if !seen[r.StateResolution] {
			seen[r.StateResolution] = true
			out = append(out, r)
		}
	}
	if len(out) < 3 {
		tb.Fatalf("found %d state resolution algorithms, want 3", len(out))
	}
	return out
}
