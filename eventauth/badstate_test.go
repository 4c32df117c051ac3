package eventauth

import (
	"errors"
	"testing"

	"github.com/gomatrixlib/gomatrixlib/event"
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

// TestVerifyServerSignature: the join_authorised_via_users_server rule asks
// Options.VerifyServerSignature when set, with the authorising server.
func TestVerifyServerSignature(t *testing.T) {
	for _, rules := range roomversion.All() {
		if !rules.RestrictedJoins {
			continue
		}
		r := newTestRoom(t, rules)
		r.add(r.build(eventSpec{Type: typeCreate, Sender: "@alice:a.test", StateKey: sk(""), Content: `{"creator":"@alice:a.test"}`}))
		r.add(r.build(eventSpec{Type: typeMember, Sender: "@alice:a.test", StateKey: sk("@alice:a.test"), Content: `{"membership":"join"}`}))
		r.add(r.build(eventSpec{Type: typeJoinRules, Sender: "@alice:a.test", StateKey: sk(""), Content: `{"join_rule":"restricted"}`}))
		join := r.build(eventSpec{Type: typeMember, Sender: "@bob:b.test", StateKey: sk("@bob:b.test"),
			Content: `{"membership":"join","join_authorised_via_users_server":"@alice:a.test"}`, Cosign: []string{"a.test"}})
		var asked []string
		verify := func(ev *event.PDU, server string) error {
			asked = append(asked, server)
			return errors.New("signature does not verify")
		}
		rule, err := CheckWithOptions(join, r.state, Options{VerifyServerSignature: verify})
		if !errors.Is(err, ErrAuthorisedVia) || len(asked) != 1 || asked[0] != "a.test" {
			t.Fatalf("room version %s: %q %v, asked %v", rules.ID, rule, err, asked)
		}
		if _, err := CheckWithOptions(join, r.state, Options{VerifyServerSignature: func(*event.PDU, string) error { return nil }}); err != nil {
			t.Fatalf("room version %s: verified join rejected: %v", rules.ID, err)
		}
	}
}

// TestManyAuthEvents: more auth events than the inline buffer holds are
// still all checked.
func TestManyAuthEvents(t *testing.T) {
	for _, rules := range roomversion.All() {
		r := newTestRoom(t, rules)
		r.add(r.build(eventSpec{Type: typeCreate, Sender: "@a:x", StateKey: sk(""), Content: `{"creator":"@a:x"}`}))
		r.add(r.build(eventSpec{Type: typeMember, Sender: "@a:x", StateKey: sk("@a:x"), Content: `{"membership":"join"}`}))
		var extra []string
		// event.Parse allows 10 auth events; 8 extra make 9 or 10 in all.
		for i := 0; i < 8; i++ {
			ev := r.build(eventSpec{Type: "m.room.topic", Sender: "@a:x", StateKey: sk(""), Content: `{"topic":"t"}`})
			r.add(ev)
			extra = append(extra, ev.EventID())
		}
		var auth []string
		for _, ev := range r.state.Select(AuthEventsNeeded(rules, "m.room.message", "", "@a:x", nil)) {
			auth = append(auth, ev.EventID())
		}
		msg := r.build(eventSpec{Type: "m.room.message", Sender: "@a:x", Content: `{}`, Auth: append(auth, extra...)})
		_, err := CheckAuthEvents(msg, r.authEventsOf(msg), Options{Create: r.create})
		if !errors.Is(err, ErrAuthEvents) {
			t.Fatalf("room version %s: %d auth events: %v", rules.ID, len(msg.AuthEventIDs()), err)
		}
		// The same events in another order than listed.
		evs := r.authEventsOf(msg)
		evs[0], evs[len(evs)-1] = evs[len(evs)-1], evs[0]
		if _, err := CheckAuthEvents(msg, evs, Options{Create: r.create}); !errors.Is(err, ErrAuthEvents) {
			t.Fatalf("room version %s: reordered: %v", rules.ID, err)
		}
	}
}

// TestNilState: a nil State is an empty one.
func TestNilState(t *testing.T) {
	for _, rules := range roomversion.All() {
		r := newTestRoom(t, rules)
		create := r.build(eventSpec{Type: typeCreate, Sender: "@a:x", StateKey: sk(""), Content: `{"creator":"@a:x"}`})
		if err := Check(create, nil); err != nil {
			t.Fatalf("room version %s: create against nil state: %v", rules.ID, err)
		}
		r.add(create)
		msg := r.build(eventSpec{Type: "m.room.message", Sender: "@a:x", Content: `{}`})
		if _, err := CheckWithOptions(msg, nil, Options{}); !errors.Is(err, ErrRejected) {
			t.Fatalf("room version %s: message against nil state: %v", rules.ID, err)
		}
	}
}
