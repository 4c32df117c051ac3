package stateres

import (
	"unsafe"

	"github.com/gomatrixlib/gomatrixlib/event"
)

// memoryOrder returns the indices of evs (none nil) ordered by the
// events' addresses in memory.
//
// Visiting the caller's events in that order instead of the order of the
// state maps matters on large rooms: an event's fields, ID and auth event
// IDs were allocated together, and events allocated one after another (a
// provider filling a batch, a room built in order) lie next to each other,
// so the visit reads memory in runs the CPU prefetches instead of jumping
// about a room that does not fit in the cache. Only speed depends on the
// order: the algorithm's results do not depend on the order of the nodes.
func memoryOrder(evs []*event.PDU) []int32 {
	n := len(evs)
	order := make([]int32, n)
	for i := range order {
		order[i] = int32(i)
	}
	if n < 2 {
		return order
	}
	addr := make([]uintptr, n)
	lo, hi := ^uintptr(0), uintptr(0)
	for i, p := range evs {
		a := uintptr(unsafe.Pointer(p))
		addr[i] = a
		lo, hi = min(lo, a), max(hi, a)
	}
	// LSD radix sort of (address - lo) / 16 (heap objects of this size
	// are at least 16 bytes apart), 11 bits per pass.
	const bits = 11
	span := (hi - lo) >> 4
	tmp := make([]int32, n)
	var count [1 << bits]int
	for shift := uint(0); span>>shift > 0; shift += bits {
		clear(count[:])
		digit := func(i int32) uintptr { return ((addr[i] - lo) >> 4 >> shift) & (1<<bits - 1) }
		for _, i := range order {
			count[digit(i)]++
		}
		sum := 0
		for d, c := range count {
			count[d] = sum
			sum += c
		}
		for _, i := range order {
			d := digit(i)
			tmp[count[d]] = i
			count[d]++
		}
		order, tmp = tmp, order
	}
	return order
}
