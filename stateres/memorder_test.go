package stateres

import (
	"math/rand/v2"
	"slices"
	"testing"
	"unsafe"

	"github.com/gomatrixlib/gomatrixlib/event"
)

func TestMemoryOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{0, 1, 2, 3, 100, 5000} {
		evs := make([]*event.PDU, n)
		for i := range evs {
			evs[i] = new(event.PDU)
		}
		rng.Shuffle(n, func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
		if n > 3 {
			evs[n-1] = evs[0] // the same event twice
		}
		order := memoryOrder(evs)
		if len(order) != n {
			t.Fatalf("n=%d: %d indices", n, len(order))
		}
		seen := make([]bool, n)
		for k, i := range order {
			if seen[i] {
				t.Fatalf("n=%d: index %d twice", n, i)
			}
			seen[i] = true
			if k > 0 && uintptr(unsafe.Pointer(evs[order[k-1]])) > uintptr(unsafe.Pointer(evs[i])) {
				t.Fatalf("n=%d: not in address order at %d", n, k)
			}
		}
		if !slices.Equal(seen, slices.Repeat([]bool{true}, n)) {
			t.Fatalf("n=%d: an index is missing", n)
		}
	}
}

func TestStringOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	buf := make([]byte, 4096)
	for _, n := range []int{0, 1, 2, 100, 1000} {
		ss := make([]string, n)
		for i := range ss {
			at := rng.IntN(len(buf) - 4)
			ss[i] = string(buf[at : at+rng.IntN(4)]) // copies; some empty
			if i%3 == 0 {
				ss[i] = unsafe.String(&buf[at], 4) // views of buf, in any order
			}
		}
		order := stringOrder(ss)
		if len(order) != n {
			t.Fatalf("n=%d: %d indices", n, len(order))
		}
		seen := make([]bool, n)
		for k, i := range order {
			if seen[i] {
				t.Fatalf("n=%d: index %d twice", n, i)
			}
			seen[i] = true
			if k > 0 && uintptr(unsafe.Pointer(unsafe.StringData(ss[order[k-1]]))) > uintptr(unsafe.Pointer(unsafe.StringData(ss[i]))) {
				t.Fatalf("n=%d: not in address order at %d", n, k)
			}
		}
	}
}
