package eventauth_test

import (
	"errors"
	"testing"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/eventauth"
	"github.com/gomatrixlib/gomatrixlib/roomtest"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
)

// bare returns a room of the version with only its create event and the
// creator's join, and a message by the creator built on it.
func bare(t *testing.T, rules roomversion.Rules, creator string) (*roomtest.Room, *event.PDU) {
	t.Helper()
	r := roomtest.New(t, roomtest.Options{Version: rules.ID, Creator: creator, Bare: true})
	msg, err := r.Build(roomtest.Event{Type: "m.room.message", Sender: r.Creator(), Unchecked: true})
	if err != nil {
		t.Fatal(err)
	}
	return r, msg
}

// TestUnreadableState: a power levels event in the state whose content the
// view cannot read gives an error wrapping ErrBadState from every entry
// point, not a verdict and not a panic.
func TestUnreadableState(t *testing.T) {
	for _, rules := range roomversion.All() {
		r, _ := bare(t, rules, "")
		// Not a valid power levels content: users is a list.
		r.Add(roomtest.Event{Type: "m.room.power_levels", Sender: r.Creator(), StateKey: roomtest.Str(""), Content: `{"users":[1]}`, Unchecked: true})
		msg, err := r.Build(roomtest.Event{Type: "m.room.message", Sender: r.Creator(), Unchecked: true})
		if err != nil {
			t.Fatal(err)
		}
		err = eventauth.Check(msg, r.State())
		if !errors.Is(err, eventauth.ErrBadState) || errors.Is(err, eventauth.ErrRejected) {
			t.Fatalf("room version %s: Check: %v", rules.ID, err)
		}
		rule, err := eventauth.CheckWithOptions(msg, r.State(), eventauth.Options{})
		if !errors.Is(err, eventauth.ErrBadState) || rule != "" {
			t.Fatalf("room version %s: CheckWithOptions: %q %v", rules.ID, rule, err)
		}
		rule, err = eventauth.CheckAuthEvents(msg, r.AuthEvents(msg), eventauth.Options{Create: r.CreateEvent()})
		if !errors.Is(err, eventauth.ErrBadState) || rule != "" {
			t.Fatalf("room version %s: CheckAuthEvents: %q %v", rules.ID, rule, err)
		}
	}
}

// TestMissingAuthEvents: CheckAuthEvents refuses to decide when the caller
// does not supply exactly the events listed.
func TestMissingAuthEvents(t *testing.T) {
	for _, rules := range roomversion.All() {
		r, msg := bare(t, rules, "")
		opts := eventauth.Options{Create: r.CreateEvent()}
		auth := r.AuthEvents(msg)
		if _, err := eventauth.CheckAuthEvents(msg, auth[:len(auth)-1], opts); !errors.Is(err, eventauth.ErrMissingAuthEvent) {
			t.Fatalf("room version %s: missing auth event: %v", rules.ID, err)
		}
		extra, err := r.Build(roomtest.Event{Type: "m.room.topic", Sender: r.Creator(), StateKey: roomtest.Str("")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := eventauth.CheckAuthEvents(msg, append(auth, extra), opts); !errors.Is(err, eventauth.ErrMissingAuthEvent) {
			t.Fatalf("room version %s: unlisted auth event: %v", rules.ID, err)
		}
		if _, err := eventauth.CheckAuthEvents(msg, append(auth, nil), opts); err != nil {
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
		r, _ := bare(t, rules, "@alice:a.test")
		r.SetJoinRule(r.Creator(), "restricted")
		join, err := r.Build(roomtest.Event{Type: "m.room.member", Sender: "@bob:b.test", StateKey: roomtest.Str("@bob:b.test"),
			Content: `{"membership":"join","join_authorised_via_users_server":"@alice:a.test"}`})
		if err != nil {
			t.Fatal(err)
		}
		var asked []string
		verify := func(ev *event.PDU, server string) error {
			asked = append(asked, server)
			return errors.New("signature does not verify")
		}
		rule, err := eventauth.CheckWithOptions(join, r.State(), eventauth.Options{VerifyServerSignature: verify})
		if !errors.Is(err, eventauth.ErrAuthorisedVia) || len(asked) != 1 || asked[0] != "a.test" {
			t.Fatalf("room version %s: %q %v, asked %v", rules.ID, rule, err, asked)
		}
		if _, err := eventauth.CheckWithOptions(join, r.State(), eventauth.Options{VerifyServerSignature: func(*event.PDU, string) error { return nil }}); err != nil {
			t.Fatalf("room version %s: verified join rejected: %v", rules.ID, err)
		}
	}
}

// TestManyAuthEvents: more auth events than the inline buffer holds are
// still all checked.
func TestManyAuthEvents(t *testing.T) {
	for _, rules := range roomversion.All() {
		r, msg := bare(t, rules, "")
		auth := msg.AuthEventIDs()
		// event.Parse allows 10 auth events; 8 extra make 9 or 10 in all.
		for range 8 {
			auth = append(auth, r.SetState(r.Creator(), "m.room.topic", "", `{"topic":"t"}`).EventID())
		}
		msg, err := r.Build(roomtest.Event{Type: "m.room.message", Sender: r.Creator(), AuthEvents: auth})
		if err != nil {
			t.Fatal(err)
		}
		opts := eventauth.Options{Create: r.CreateEvent()}
		if _, err := eventauth.CheckAuthEvents(msg, r.AuthEvents(msg), opts); !errors.Is(err, eventauth.ErrAuthEvents) {
			t.Fatalf("room version %s: %d auth events: %v", rules.ID, len(msg.AuthEventIDs()), err)
		}
		// The same events in another order than listed.
		evs := r.AuthEvents(msg)
		evs[0], evs[len(evs)-1] = evs[len(evs)-1], evs[0]
		if _, err := eventauth.CheckAuthEvents(msg, evs, opts); !errors.Is(err, eventauth.ErrAuthEvents) {
			t.Fatalf("room version %s: reordered: %v", rules.ID, err)
		}
	}
}

// TestNilState: a nil State is an empty one.
func TestNilState(t *testing.T) {
	for _, rules := range roomversion.All() {
		r, msg := bare(t, rules, "")
		if err := eventauth.Check(r.CreateEvent(), nil); err != nil {
			t.Fatalf("room version %s: create against nil state: %v", rules.ID, err)
		}
		if _, err := eventauth.CheckWithOptions(msg, nil, eventauth.Options{}); !errors.Is(err, eventauth.ErrRejected) {
			t.Fatalf("room version %s: message against nil state: %v", rules.ID, err)
		}
	}
}
