package eventauth

import (
	"testing"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
)

// benchEvents loads the accepted events of a realistic room file with their
// auth events, repeated up to n events, and the room's create event.
func benchEvents(tb testing.TB, rules roomversion.Rules, n int) ([]replayStep, *event.PDU) {
	lines, err := loadRoomFile(rules, roomFileName(rules))
	if err != nil {
		tb.Fatal(err)
	}
	byID := map[string]*event.PDU{}
	var ok []replayStep
	for _, l := range lines {
		byID[l.ev.EventID()] = l.ev
		if !l.allowed {
			continue
		}
		var auth []*event.PDU
		for _, id := range l.ev.AuthEventIDs() {
			auth = append(auth, byID[id])
		}
		ok = append(ok, replayStep{ev: l.ev, auth: auth})
	}
	out := make([]replayStep, 0, n)
	for len(out) < n {
		out = append(out, ok[len(out)%len(ok)])
	}
	return out, ok[0].ev
}

// BenchmarkCheckAuthEvents checks 1000 events of a realistic room (the
// accepted events of testdata/room-v*.jsonl, repeated) against their own
// auth events (PDU receipt check 4); one op is 1000 events.
func BenchmarkCheckAuthEvents(b *testing.B) {
	for _, rules := range roomFileVersions() {
		steps, create := benchEvents(b, rules, 1000)
		b.Run("v"+rules.ID, func(b *testing.B) {
			b.ReportAllocs()
			opts := Options{Create: create}
			for b.Loop() {
				for i := range steps {
					if _, err := CheckAuthEvents(steps[i].ev, steps[i].auth, opts); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// messageAgainstState returns a message event and the parsed state it is
// checked against.
func messageAgainstState(tb testing.TB, rules roomversion.Rules) (*event.PDU, StateMap) {
	steps := realisticRoom(tb, rules)
	r := newTestRoom(tb, rules)
	for _, s := range steps {
		if s.want == nil {
			r.add(s.ev)
		}
	}
	msg := r.build(eventSpec{Type: "m.room.message", Sender: "@user20:s0.test", Content: `{"msgtype":"m.text","body":"hi"}`})
	// Parse the views once, as a server holding the state would have.
	if err := Check(msg, r.state); err != nil {
		tb.Fatal(err)
	}
	return msg, r.state
}

// BenchmarkCheckMessage checks a message event against the parsed current
// state of the realistic room: the common case.
func BenchmarkCheckMessage(b *testing.B) {
	for _, rules := range []string{"1", "10", "12"} {
		rv, err := roomversion.Get(rules)
		if err != nil {
			b.Fatal(err)
		}
		msg, state := messageAgainstState(b, rv)
		b.Run("v"+rules, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := Check(msg, state); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestCheckMessageAllocs guards the common path: a message event checked
// against parsed state, or against its own auth events, allocates nothing,
// in every room version.
func TestCheckMessageAllocs(t *testing.T) {
	for _, rules := range roomversion.All() {
		msg, state := messageAgainstState(t, rules)
		if n := testing.AllocsPerRun(100, func() {
			if err := Check(msg, state); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("room version %s: %v allocations per message check, want 0", rules.ID, n)
		}
		auth := state.Select(AuthEventsNeeded(rules, msg.Type(), "", msg.Sender(), msg.Content()))
		opts := Options{Create: state.Create()}
		if n := testing.AllocsPerRun(100, func() {
			if _, err := CheckAuthEvents(msg, auth, opts); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("room version %s: %v allocations per message check against auth events, want 0", rules.ID, n)
		}
	}
}
