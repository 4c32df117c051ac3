package stateres

import (
	"reflect"
	"testing"

	"github.com/gomatrixlib/gomatrixlib/event"
)

// TestPDUHotBytes checks that the event.PDU fields the prefetch pipelines
// and the auth checks read lie in the first pduHotBytes of the struct, the
// part prefetchPDU asks for, and that the struct is at least that long.
func TestPDUHotBytes(t *testing.T) {
	typ := reflect.TypeFor[event.PDU]()
	if typ.Size() < pduHotBytes {
		// prefetchPDU would form pointers past the struct.
		t.Fatalf("event.PDU is %d bytes, under the %d prefetchPDU asks for", typ.Size(), pduHotBytes)
	}
	for _, name := range []string{"eventID", "typ", "stateKey", "sender", "member", "isState", "ts", "depth", "auth", "content", "authBuf", "rules", "roomID"} {
		f, ok := typ.FieldByName(name)
		if !ok {
			t.Errorf("event.PDU has no field %s", name)
			continue
		}
		if end := f.Offset + f.Type.Size(); end > pduHotBytes {
			t.Errorf("event.PDU.%s ends at byte %d, past the %d prefetched", name, end, pduHotBytes)
		}
	}
}
