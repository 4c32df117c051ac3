package stateres

// Prefetch pipelines. Where a phase visits the caller's events in an
// order the CPU cannot guess (the algorithm's order, a map's, or a
// provider's), it asks for the lines of the events a few steps ahead
// (internal/prefetch), in stages when finding the next line needs the
// previous one (node, then the event's struct, then the bytes its fields
// point to); partition's pipeline is in v2.go. Together they lowered the
// growth exponent of BenchmarkResolveGrowth from N=1000 to N=10000 from
// about 1.18 to about 1.11 here; each one alone was worth 0.02-0.04 of it
// (docs/notes/stateres.md). They change no result.

import (
	"unsafe"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/internal/prefetch"
)

// pduHotBytes is how much of the start of an event.PDU holds the fields
// state resolution and the auth checks read (event.PDU puts them first).
const pduHotBytes = 256

// prefetchPDU asks for the cache lines of p's struct that hold its hot
// fields. It reads nothing of p.
func prefetchPDU(p *event.PDU) {
	q := unsafe.Pointer(p)
	for off := 0; off < pduHotBytes; off += 64 {
		prefetch.Pointer(unsafe.Add(q, off))
	}
}

// prefetchFetch prepares the visit of evs[order[j+8]] and evs[order[j+16]]
// while a fetch visits evs[order[j]]: the struct of the farther one, the
// bytes of the room ID, type and state key of the nearer one.
func prefetchFetch(evs []*event.PDU, order []int32, j int) {
	if k := j + 16; k < len(order) {
		prefetchPDU(evs[order[k]])
	}
	if k := j + 8; k < len(order) {
		p := evs[order[k]]
		sk, _ := p.StateKey()
		prefetch.String(p.RoomID())
		prefetch.String(p.Type())
		prefetch.String(sk)
	}
}

// ahead prepares the auth check of list[i+8], list[i+16] and list[i+24]
// while the caller checks list[i], in three stages of prefetches: the
// node, then the event's struct (the node says which event), then the
// bytes of the fields the check reads (the struct holds where they are).
// The order of the checks is the algorithm's, not the order of the events
// in memory, so on a large room each check would otherwise wait for
// several cache misses in turn; issued this far ahead, they overlap.
func (a *adapter) ahead(list []int32, i int) {
	g := a.g
	if j := i + 24; j < len(list) {
		prefetch.Pointer(unsafe.Pointer(&g.nodes[list[j]]))
	}
	if j := i + 16; j < len(list) {
		prefetchPDU(a.pdus[g.nodes[list[j]].ext])
	}
	if j := i + 8; j < len(list) {
		p := a.pdus[g.nodes[list[j]].ext]
		sk, _ := p.StateKey()
		prefetch.String(p.Sender())
		prefetch.String(p.Type())
		prefetch.String(sk)
		prefetch.String(p.Membership())
		prefetch.Bytes(p.Content())
	}
}

// prefetchAuthIDs prepares the reading of the auth IDs of frontier[f+8]
// and frontier[f+16] while the caller reads those of frontier[f]: first
// the slice holding the strings (it lies in the event), then their bytes.
// The hashing of each ID is long enough that the CPU would not reach the
// next events' misses by itself.
func (g *graph) prefetchAuthIDs(frontier []int32, f int) {
	if j := f + 16; j < len(frontier) {
		if a := g.info[frontier[j]].authIDs; len(a) > 0 {
			prefetch.Pointer(unsafe.Pointer(&a[0]))
		}
	}
	if j := f + 8; j < len(frontier) {
		for _, id := range g.info[frontier[j]].authIDs {
			prefetch.String(id)
		}
	}
}
