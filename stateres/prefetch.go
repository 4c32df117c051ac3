package stateres

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
