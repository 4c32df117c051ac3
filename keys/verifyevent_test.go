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

// TestRingTellsOldKeysFromCurrent: the ring reports keys from
// old_verify_keys as signing.KeyOld (also after a stale response lists
// them as current again) and current ones as signing.KeyCurrent, while
// VerifyKey, and so event verification, still accepts an old key for
// events made up to its expired_ts.
func TestRingTellsOldKeysFromCurrent(t *testing.T) {
	c := newClock()
	now := c.Now().UnixMilli()
	cur, old := genKey(t, "ed25519:cur"), genKey(t, "ed25519:old")
	expired := now + 86_400_000 // in the future
	ring := &Ring{Now: c.Now}
	// A stale response that still lists the old key as current, then
	// the newer one that retired it, then the stale one again.
	stale := serverKeys(t, "a.example", now+1000, []*signing.Key{old})
	newer := serverKeys(t, "a.example", now+3_600_000, []*signing.Key{cur}, OldKey{KeyID: old.KeyID(), Public: old.Public(), ExpiredTS: expired})
	for _, sk := range []*ServerKeys{stale, newer, stale} {
		if err := ring.Add(sk); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	for _, tc := range []struct {
		key  *signing.Key
		want signing.KeyStatus
	}{{cur, signing.KeyCurrent}, {old, signing.KeyOld}} {
		pub, status, err := ring.LookupKey(ctx, "a.example", tc.key.KeyID(), c.Now())
		if err != nil || !pub.Equal(tc.key.Public()) || status != tc.want {
			t.Errorf("%s: %v %v, want %v", tc.key.KeyID(), status, err, tc.want)
		}
	}
	rules, err := roomversion.Get("10")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ts   int64
		want error
	}{{expired, nil}, {expired + 1, signing.ErrKeyExpired}} {
		ev := []byte(`{"auth_events":[],"content":{"body":"hi"},"depth":1,"origin_server_ts":` + strconv.FormatInt(tc.ts, 10) +
			`,"prev_events":[],"room_id":"!r:a.example","sender":"@u:a.example","type":"m.room.message"}`)
		signed, err := signing.SignEvent(rules, "a.example", old.KeyID(), old.PrivateKey(), ev)
		if err != nil {
			t.Fatal(err)
		}
		if err := signing.VerifyEvent(ctx, rules, signed, ring); !errors.Is(err, tc.want) {
			t.Errorf("event at %d signed with the old key: %v, want %v", tc.ts, err, tc.want)
		}
	}
}
