package roomtest_test

import (
	"context"
	"errors"
	"github.com/gomatrixlib/gomatrixlib/canonicaljson"
	"testing"
	"time"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/eventauth"
	"github.com/gomatrixlib/gomatrixlib/hashing"
	"github.com/gomatrixlib/gomatrixlib/roomtest"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
	"github.com/gomatrixlib/gomatrixlib/signing"
)

var timeZero time.Time

// check runs the library's receipt checks in order: format, signatures and
// hashes, then authorization against the event's auth events.
func check(r *roomtest.Room, f *roomtest.Forged) error {
	ev, err := event.Parse(r.Rules, f.JSON)
	if err != nil {
		return err
	}
	if err := signing.VerifyEvent(context.Background(), r.Rules, f.JSON, r); err != nil {
		return err
	}
	_, err = eventauth.CheckAuthEvents(ev, f.AuthEvents, eventauth.Options{Create: r.CreateEvent()})
	return err
}

// TestForgeriesRejected: every forgery, in every room version, on a state
// event and a message, is rejected by the library with its error.
func TestForgeriesRejected(t *testing.T) {
	t.Parallel()
	want := map[roomtest.Forgery]error{
		roomtest.WrongContentHash:     hashing.ErrContentHashMismatch,
		roomtest.BadSignature:         signing.ErrBadSignature,
		roomtest.WrongServerSignature: signing.ErrMissingSignature,
		roomtest.ForeignSender:        signing.ErrMissingSignature,
		roomtest.ForeignAuthEvents:    eventauth.ErrAuthEvents,
		roomtest.TooLarge:             event.ErrTooLarge,
	}
	expect := func(rules roomversion.Rules, f roomtest.Forgery) error {
		if f != roomtest.DepthOutOfRange {
			return want[f]
		}
		// 2^53 breaks strict canonical JSON before the depth check;
		// 2^63 is a number event.Parse reads but refuses as a depth.
		if rules.StrictCanonicalJSON {
			return canonicaljson.ErrNumberRange
		}
		return event.ErrBadField
	}
	if len(want)+1 != len(roomtest.Forgeries()) {
		t.Fatal("a forgery has no expected error")
	}
	for _, rules := range roomversion.All() {
		t.Run("v"+rules.ID, func(t *testing.T) {
			t.Parallel()
			r := roomtest.New(t, roomtest.Options{Version: rules.ID})
			r.Join(bob)
			n := r.Len()
			for _, e := range []roomtest.Event{
				{Type: "m.room.message", Sender: bob, Content: map[string]any{"body": "forged"}},
				{Type: "m.room.topic", Sender: alice, StateKey: roomtest.Str(""), Content: map[string]any{"topic": "forged"}},
			} {
				// The same event unforged passes every check.
				good := r.Fork().Add(e)
				if err := check(r, &roomtest.Forged{JSON: good.JSON(), AuthEvents: r.AuthEvents(good)}); err != nil {
					t.Fatalf("%s unforged: %v", e.Type, err)
				}
				for _, f := range roomtest.Forgeries() {
					forged := r.Forge(f, e)
					if err := check(r, forged); !errors.Is(err, expect(rules, f)) {
						t.Errorf("%s %v: err = %v, want %v", e.Type, f, err, expect(rules, f))
					}
				}
			}
			if r.Len() != n+2 {
				t.Fatalf("forging added events: %d, want %d", r.Len(), n+2)
			}
		})
	}
}
