//go:build !goexperiment.jsonv2

package bench

import (
	"context"
	"crypto/ed25519"
	"testing"

	"github.com/gomatrixlib/gomatrixlib/canonicaljson"
	"github.com/gomatrixlib/gomatrixlib/hashing"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
	"github.com/gomatrixlib/gomatrixlib/signing"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

func rulesV10() roomversion.Rules { r, _ := roomversion.Get("10"); return r }

func BenchmarkEventID1KB(b *testing.B)  { benchEvents(b); benchEventID(b, events1000[0]) }
func BenchmarkEventID60KB(b *testing.B) { benchEvents(b); benchEventID(b, event60KB) }

// benchEventID: ours computes the ID from raw bytes; gomatrixserverlib
// computes it while loading the event (NewEventFromTrustedJSON), which is
// how its users get an event ID.
func benchEventID(b *testing.B, ev []byte) {
	rules := rulesV10()
	verImpl := gomatrixserverlib.MustGetRoomVersion(gomatrixserverlib.RoomVersionV10)
	ours, err := hashing.EventID(rules, ev)
	if err != nil {
		b.Fatal(err)
	}
	g, err := verImpl.NewEventFromTrustedJSON(ev, false)
	if err != nil || g.EventID() != ours {
		b.Fatalf("gomatrixserverlib disagrees: %v", err)
	}
	b.Run("ours", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(ev)))
		for b.Loop() {
			if _, err := hashing.EventID(rules, ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("gmsl", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(ev)))
		for b.Loop() {
			g, err := verImpl.NewEventFromTrustedJSON(ev, false)
			if err != nil {
				b.Fatal(err)
			}
			_ = g.EventID()
		}
	})
}

func BenchmarkRedact1KB(b *testing.B) {
	benchEvents(b)
	ev := events1000[0]
	rules := rulesV10()
	verImpl := gomatrixserverlib.MustGetRoomVersion(gomatrixserverlib.RoomVersionV10)
	b.Run("ours", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := hashing.Redact(rules, ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("gmsl", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := verImpl.RedactEventJSON(ev); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func signInput() []byte {
	benchEventsOnceForInput()
	out, _ := canonicaljson.Append(nil, events1000[0], canonicaljson.Options{Omit: []string{"signatures", "unsigned", "hashes"}})
	return out
}

func benchEventsOnceForInput() { benchEvents(nil) }

func BenchmarkSignJSON1KB(b *testing.B) {
	in := signInput()
	priv := benchKey.PrivateKey()
	b.Run("ours", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := signing.SignJSON(benchServer, "ed25519:a_1", priv, in); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("gmsl", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := gomatrixserverlib.SignJSON(benchServer, "ed25519:a_1", priv, in); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw", func(b *testing.B) {
		for b.Loop() {
			ed25519.Sign(priv, in)
		}
	})
}

func BenchmarkVerifyJSON1KB(b *testing.B) {
	in, _ := signing.SignJSON(benchServer, "ed25519:a_1", func() ed25519.PrivateKey { benchEvents(b); return benchKey.PrivateKey() }(), signInput())
	pub := benchKey.Public()
	b.Run("ours", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := signing.VerifyJSON(benchServer, "ed25519:a_1", pub, in); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("gmsl", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := gomatrixserverlib.VerifyJSON(benchServer, "ed25519:a_1", pub, in); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw", func(b *testing.B) {
		// The bytes the signature covers, checked with crypto/ed25519.
		msg := signInput()
		sig := ed25519.Sign(benchKey.PrivateKey(), msg)
		for b.Loop() {
			if !ed25519.Verify(pub, msg, sig) {
				b.Fatal("bad signature")
			}
		}
	})
}

// gmslVerifier is a gomatrixserverlib.JSONVerifier with one fixed key.
type gmslVerifier struct{ pub ed25519.PublicKey }

func (v gmslVerifier) VerifyJSONs(_ context.Context, reqs []gomatrixserverlib.VerifyJSONRequest) ([]gomatrixserverlib.VerifyJSONResult, error) {
	out := make([]gomatrixserverlib.VerifyJSONResult, len(reqs))
	for i, r := range reqs {
		out[i].Error = gomatrixserverlib.VerifyJSON(string(r.ServerName), "ed25519:a_1", v.pub, r.Message)
	}
	return out, nil
}

// BenchmarkVerifyEvents1000: 1000 signed ~1 KB events, content hashes and
// signatures. Ours: signing.VerifyEvents. gomatrixserverlib: load each
// event untrusted (checks the content hash) and VerifyEventSignatures.
func BenchmarkVerifyEvents1000(b *testing.B) { benchVerifyEvents(b, signing.VerifyOptions{}) }

// BenchmarkVerifyEventsBatch1000 is the same with ours in the opt-in batch
// mode (signing.VerifyOptions.Batch).
func BenchmarkVerifyEventsBatch1000(b *testing.B) {
	benchVerifyEvents(b, signing.VerifyOptions{Batch: true})
}

func benchVerifyEvents(b *testing.B, opts signing.VerifyOptions) {
	benchEvents(b)
	rules := rulesV10()
	keys := fixedKey{benchKey.Public()}
	verImpl := gomatrixserverlib.MustGetRoomVersion(gomatrixserverlib.RoomVersionV10)
	gv := gmslVerifier{benchKey.Public()}
	userIDForSender := func(_ spec.RoomID, s spec.SenderID) (*spec.UserID, error) { return s.ToUserID(), nil }
	ctx := context.Background()
	b.Run("ours", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for i, err := range signing.VerifyEventsWithOptions(ctx, rules, events1000, keys, opts) {
				if err != nil {
					b.Fatalf("event %d: %v", i, err)
				}
			}
		}
	})
	b.Run("gmsl", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, ev := range events1000 {
				pdu, err := verImpl.NewEventFromUntrustedJSON(ev)
				if err != nil {
					b.Fatal(err)
				}
				if err := gomatrixserverlib.VerifyEventSignatures(ctx, pdu, gv, userIDForSender); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("raw", func(b *testing.B) {
		msg := signInput()
		sig := ed25519.Sign(benchKey.PrivateKey(), msg)
		pub := benchKey.Public()
		for b.Loop() {
			for range 1000 {
				ed25519.Verify(pub, msg, sig)
			}
		}
	})
}
