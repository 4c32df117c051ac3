package eventauth

import (
	"errors"
	"testing"

	"github.com/gomatrixlib/gomatrixlib/roomversion"
)

// TestUnreadableState: a power levels event in the state whose content the
// view cannot read gives an error wrapping ErrBadState from every entry
// point, not a verdict and not a panic.
func TestUnreadableState(t *testing.T) {
	for _, rules := range roomversion.All() {
		r := newTestRoom(t, rules)
		r.add(r.build(eventSpec{Type: typeCreate, Sender: "@a:x", StateKey: sk(""), Content: `{"creator":"@a:x"}`}))
		r.add(r.build(eventSpec{Type: typeMember, Sender: "@a:x", StateKey: sk("@a:x"), Content: `{"membership":"join"}`}))
		// Not a valid power levels content: users is a list.
		r.add(r.build(eventSpec{Type: typePowerLevels, Sender: "@a:x", StateKey: sk(""), Content: `{"users":[1]}`}))
		msg := r.build(eventSpec{Type: "m.room.message", Sender: "@a:x", Content: `{}`})
		err := Check(msg, r.state)
		if !errors.Is(err, ErrBadState) || errors.Is(err, ErrRejected) {
			t.Fatalf("room version %s: Check: %v", rules.ID, err)
		}
		rule, err := CheckWithOptions(msg, r.state, Options{})
		if !errors.Is(err, ErrBadState) || rule != "" {
			t.Fatalf("room version %s: CheckWithOptions: %q %v", rules.ID, rule, err)
		}
		rule, err = CheckAuthEvents(msg, r.authEventsOf(msg), Options{Create: r.create})
		if !errors.Is(err, ErrBadState) || rule != "" {
			t.Fatalf("room version %s: CheckAuthEvents: %q %v", rules.ID, rule, err)
		}
	}
}

// TestMissingAuthEvents: CheckAuthEvents refuses to decide when the caller
// does not supply exactly the events listed.
func TestMissingAuthEvents(t *testing.T) {
	for _, rules := range roomversion.All() {
		r := newTestRoom(t, rules)
		r.add(r.build(eventSpec{Type: typeCreate, Sender: "@a:x", StateKey: sk(""), Content: `{"creator":"@a:x"}`}))
		join := r.build(eventSpec{Type: typeMember, Sender: "@a:x", StateKey: sk("@a:x"), Content: `{"membership":"join"}`})
		r.add(join)
		msg := r.build(eventSpec{Type: "m.room.message", Sender: "@a:x", Content: `{}`})
		auth := r.authEventsOf(msg)
		if _, err := CheckAuthEvents(msg, auth[:len(auth)-1], Options{Create: r.create}); !errors.Is(err, ErrMissingAuthEvent) {
			t.Fatalf("room version %s: missing auth event: %v", rules.ID, err)
		}
		extra := r.build(eventSpec{Type: "m.room.topic", Sender: "@a:x", StateKey: sk(""), Content: `{}`})
		if _, err := CheckAuthEvents(msg, append(auth, extra), Options{Create: r.create}); !errors.Is(err, ErrMissingAuthEvent) {
			t.Fatalf("room version %s: unlisted auth event: %v", rules.ID, err)
		}
		if _, err := CheckAuthEvents(msg, append(auth, nil), Options{Create: r.create}); err != nil {
			t.Fatalf("room version %s: nil entries are skipped: %v", rules.ID, err)
		}
	}
}
