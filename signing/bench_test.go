package signing

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gomatrixlib/gomatrixlib/canonicaljson"
)

func oneKBObject() []byte {
	return []byte(`{"type":"m.room.message","room_id":"!jEsUZKDJdhlrceRyVU:example.org","sender":"@alice:example.org","origin_server_ts":1700000000000,"depth":12,"content":{"msgtype":"m.text","body":"` + strings.Repeat("Hello everyone, this is a message. ", 24) + `"}}`)
}

func BenchmarkSignJSON(b *testing.B) {
	k := specKey(b)
	in := oneKBObject()
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := SignJSON("domain", "ed25519:1", k.PrivateKey(), in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRawEd25519Sign(b *testing.B) {
	k := specKey(b)
	in, _ := canonicaljson.Canonicalize(oneKBObject())
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		ed25519.Sign(k.PrivateKey(), in)
	}
}

func BenchmarkVerifyJSON(b *testing.B) {
	k := specKey(b)
	in, _ := SignJSON("domain", "ed25519:1", k.PrivateKey(), oneKBObject())
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if err := VerifyJSON("domain", "ed25519:1", k.Public(), in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRawEd25519Verify(b *testing.B) {
	k := specKey(b)
	in, _ := canonicaljson.Canonicalize(oneKBObject())
	sig := ed25519.Sign(k.PrivateKey(), in)
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if !ed25519.Verify(k.Public(), in, sig) {
			b.Fatal("bad")
		}
	}
}

// BenchmarkVerifyEvents1000 verifies 1000 signed ~1 KB events (signatures
// and content hashes); compare with 1000 x BenchmarkRawEd25519Verify.
func BenchmarkVerifyEvents1000(b *testing.B) {
	k := specKey(b)
	rules := mustRules(b, "10")
	keys := mapKeys{"example.org ed25519:1": {k.Public(), time.UnixMilli(9e12)}}
	evs := make([][]byte, 1000)
	for i := range evs {
		ev := fmt.Sprintf(`{"type":"m.room.message","room_id":"!r:example.org","sender":"@alice:example.org","origin_server_ts":%d,"depth":%d,"prev_events":[],"auth_events":[],"content":{"msgtype":"m.text","body":"%s"}}`, 1700000000000+i, i+1, strings.Repeat("message text ", 60))
		s, err := SignEvent(rules, "example.org", "ed25519:1", k.PrivateKey(), []byte(ev))
		if err != nil {
			b.Fatal(err)
		}
		evs[i] = s
	}
	for _, mode := range []struct {
		name string
		opts VerifyOptions
	}{{"single", VerifyOptions{}}, {"batch", VerifyOptions{Batch: true}}} {
		b.Run(mode.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				for i, err := range VerifyEventsWithOptions(context.Background(), rules, evs, keys, mode.opts) {
					if err != nil {
						b.Fatalf("event %d: %v", i, err)
					}
				}
			}
		})
	}
}
