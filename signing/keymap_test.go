package signing

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestKeyMapLookup: KeyMap answers VerifyKey and LookupKey with validity
// and the current/old status; an old key verifies events up to its
// ValidUntil.
func TestKeyMapLookup(t *testing.T) {
	cur, _ := GenerateKey("ed25519:cur")
	old, _ := GenerateKey("ed25519:old")
	until := time.UnixMilli(1_700_000_000_000)
	m := KeyMap{}
	m.Add("a.example", "ed25519:cur", KnownKey{Public: cur.Public()})
	m.Add("a.example", "ed25519:old", KnownKey{Public: old.Public(), ValidUntil: until, Old: true})
	ctx := context.Background()
	for _, tc := range []struct {
		server, keyID string
		at            time.Time
		status        KeyStatus
		err           error
	}{
		{"a.example", "ed25519:cur", until.Add(time.Hour), KeyCurrent, nil},
		{"a.example", "ed25519:old", until, KeyOld, nil},
		{"a.example", "ed25519:old", time.Time{}, KeyOld, nil},
		{"a.example", "ed25519:old", until.Add(time.Millisecond), 0, ErrKeyExpired},
		{"a.example", "ed25519:zz", until, 0, ErrUnknownKey},
		{"b.example", "ed25519:cur", until, 0, ErrUnknownKey},
	} {
		pub, status, err := m.LookupKey(ctx, tc.server, tc.keyID, tc.at)
		if !errors.Is(err, tc.err) || status != tc.status || (err == nil) != (pub != nil) {
			t.Errorf("%s %s at %v: %v %v, want %v %v", tc.server, tc.keyID, tc.at, status, err, tc.status, tc.err)
		}
		if pub2, err2 := m.VerifyKey(ctx, tc.server, tc.keyID, tc.at); !errors.Is(err2, tc.err) || !pub2.Equal(pub) {
			t.Errorf("VerifyKey %s %s: %v", tc.server, tc.keyID, err2)
		}
	}
	rules := mustRules(t, "10")
	ev := []byte(`{"type":"m.room.message","room_id":"!r:a.example","sender":"@u:a.example","origin_server_ts":1700000000000,"depth":3,"prev_events":[],"auth_events":[],"content":{}}`)
	signed, err := SignEvent(rules, "a.example", old.KeyID(), old.PrivateKey(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyEvent(ctx, rules, signed, m); err != nil {
		t.Errorf("event at the old key's expired_ts: %v", err)
	}
}
