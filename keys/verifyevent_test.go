package keys

import (
	"context"
	"errors"
	"strconv"
	"testing"

	"github.com/gomatrixlib/gomatrixlib/roomversion"
	"github.com/gomatrixlib/gomatrixlib/signing"
)

// TestRingWithVerifyEvent uses the Ring as signing.KeyLookup for event
// verification in every room version: the event verifies while the key is
// valid, and after the key's validity only in versions that do not enforce
// it.
func TestRingWithVerifyEvent(t *testing.T) {
	c := newClock()
	now := c.Now().UnixMilli()
	k := genKey(t, "ed25519:ev")
	until := now + 3_600_000
	ring := &Ring{Now: c.Now, Sources: []Source{static(serverKeys(t, "a.example", until, []*signing.Key{k}))}}
	event := func(ts int64) []byte {
		return []byte(`{"auth_events":[],"content":{"body":"hi"},"depth":1,"event_id":"$e1:a.example",` +
			`"origin":"a.example","origin_server_ts":` + strconv.FormatInt(ts, 10) + `,"prev_events":[],` +
			`"room_id":"!r:a.example","sender":"@u:a.example","type":"m.room.message"}`)
	}
	for _, rules := range roomversion.All() {
		for _, tc := range []struct {
			name    string
			ts      int64
			expired bool
		}{{"within validity", until, false}, {"after validity", until + 1, true}} {
			signed, err := signing.SignEvent(rules, "a.example", k.KeyID(), k.PrivateKey(), event(tc.ts))
			if err != nil {
				t.Fatalf("%s: sign: %v", rules.ID, err)
			}
			err = signing.VerifyEvent(context.Background(), rules, signed, ring)
			wantFail := tc.expired && rules.EnforceKeyValidity
			if wantFail && !errors.Is(err, signing.ErrKeyExpired) {
				t.Errorf("%s %s: %v, want ErrKeyExpired", rules.ID, tc.name, err)
			}
			if !wantFail && err != nil {
				t.Errorf("%s %s: %v", rules.ID, tc.name, err)
			}
		}
	}
}
