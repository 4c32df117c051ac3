package stateres

import (
	"math/rand/v2"
	"testing"
	"unsafe"

	"github.com/gomatrixlib/gomatrixlib/event"
)

// checkAddressOrder fails unless order is a permutation of 0..n-1 that
// visits the addresses addr(i) in increasing order.
func checkAddressOrder(t *testing.T, n int, order []int32, addr func(i int32) uintptr) {
	t.Helper()
	if len(order) != n {
		t.Fatalf("n=%d: %d indices", n, len(order))
	}
	seen := make([]bool, n)
	for k, i := range order {
		if i < 0 || int(i) >= n || seen[i] {
			t.Fatalf("n=%d: index %d out of range or twice", n, i)
		}
		seen[i] = true
		if k > 0 && addr(order[k-1]) > addr(i) {
			t.Fatalf("n=%d: not in address order at %d", n, k)
		}
	}
}

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
		checkAddressOrder(t, n, memoryOrder(evs), func(i int32) uintptr { return uintptr(unsafe.Pointer(evs[i])) })
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
		checkAddressOrder(t, n, stringOrder(ss), func(i int32) uintptr { return uintptr(unsafe.Pointer(unsafe.StringData(ss[i]))) })
	}
}
