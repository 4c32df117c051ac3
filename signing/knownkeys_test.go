package signing

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestVerifyEventEveryKnownKeySignatureMustVerify: a server's signature
// under a key ID the lookup knows (and finds valid at the event's time)
// must verify even when another of its signatures does; signatures under
// unknown key IDs, unknown algorithms or keys not valid at the time are
// ignored. Checked in VerifyEvent and VerifyEventsWithOptions, both modes.
func TestVerifyEventEveryKnownKeySignatureMustVerify(t *testing.T) {
	rules := mustRules(t, "10")
	a, _ := GenerateKey("ed25519:a")
	a2, _ := GenerateKey("ed25519:a2")
	old, _ := GenerateKey("ed25519:old")
	keys := mapKeys{
		"one.org ed25519:a":   {a.Public(), time.UnixMilli(9e12)},
		"one.org ed25519:a2":  {a2.Public(), time.UnixMilli(9e12)},
		"one.org ed25519:old": {old.Public(), time.UnixMilli(1700000000000 - 1)},
	}
	ev := []byte(`{"type":"m.room.message","room_id":"!r:one.org","sender":"@u:one.org","origin_server_ts":1700000000000,"depth":3,"prev_events":[],"auth_events":[],"content":{"body":"hello"}}`)
	good, err := SignEvent(rules, "one.org", a.KeyID(), a.PrivateKey(), ev)
	if err != nil {
		t.Fatal(err)
	}
	both, err := SignEvent(rules, "one.org", a2.KeyID(), a2.PrivateKey(), good)
	if err != nil {
		t.Fatal(err)
	}
	sigA2 := gjsonString(t, both, `signatures.one\.org.ed25519:a2`)
	otherSig, err := SignEvent(rules, "one.org", a2.KeyID(), a2.PrivateKey(), []byte(strings.Replace(string(ev), `"depth":3`, `"depth":4`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	wrongBytes := gjsonString(t, otherSig, `signatures.one\.org.ed25519:a2`)
	withSig := func(keyID, sig string) []byte {
		// Adds "keyID": sig (raw JSON) to one.org's signatures of good.
		return []byte(strings.Replace(string(good), `"one.org":{`, `"one.org":{"`+keyID+`":`+sig+`,`, 1))
	}
	for _, tc := range []struct {
		name string
		ev   []byte
		want error // nil: accepted
	}{
		{"both good", both, nil},
		{"second known key, wrong bytes", withSig("ed25519:a2", `"`+wrongBytes+`"`), ErrBadSignature},
		{"second known key after the good one, wrong bytes", []byte(strings.Replace(string(both), sigA2, wrongBytes, 1)), ErrBadSignature},
		{"second known key, 63 bytes", withSig("ed25519:a2", `"`+EncodeBase64(make([]byte, 63))+`"`), ErrBadSignature},
		{"second known key, not base64", withSig("ed25519:a2", `"!!`+sigA2[2:]+`"`), ErrBadBase64},
		{"second known key, not a string", withSig("ed25519:a2", `5`), ErrBadSignature},
		{"unknown key ID, garbage", withSig("ed25519:zz", `"!!garbage"`), nil},
		{"unknown algorithm, garbage", withSig("curve25519:a2", `"!!garbage"`), nil},
		{"key not valid at the time, wrong bytes", withSig("ed25519:old", `"`+wrongBytes+`"`), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check := func(how string, err error) {
				t.Helper()
				if tc.want == nil && err != nil {
					t.Errorf("%s: %v, want accepted", how, err)
				}
				if tc.want != nil && !errors.Is(err, tc.want) {
					t.Errorf("%s: %v, want %v", how, err, tc.want)
				}
			}
			ctx := context.Background()
			check("VerifyEvent", VerifyEvent(ctx, rules, tc.ev, keys))
			for _, batch := range []bool{false, true} {
				evs := make([][]byte, 64) // enough to fill a batch
				for i := range evs {
					evs[i] = tc.ev
				}
				how := map[bool]string{false: "VerifyEvents", true: "VerifyEvents batch"}[batch]
				out := VerifyEventsWithOptions(ctx, rules, evs, keys, VerifyOptions{Batch: batch})
				for i, err := range out {
					if (err == nil) != (out[0] == nil) {
						t.Errorf("%s: event %d: %v, event 0: %v", how, i, err, out[0])
					}
				}
				check(how, out[0])
			}
		})
	}
}
