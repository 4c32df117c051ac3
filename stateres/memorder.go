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
	addr := make([]uint64, len(evs))
	for i, p := range evs {
		addr[i] = uint64(uintptr(unsafe.Pointer(p)))
	}
	return radixOrder(len(evs), addr)
}

// stringOrder returns the indices of ss ordered by the addresses of the
// strings' bytes.
func stringOrder(ss []string) []int32 {
	addr := make([]uint64, len(ss))
	for i, s := range ss {
		addr[i] = uint64(uintptr(unsafe.Pointer(unsafe.StringData(s))))
	}
	return radixOrder(len(ss), addr)
}
