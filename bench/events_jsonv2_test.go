//go:build goexperiment.jsonv2

package bench

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/gomatrixlib/gomatrixlib/hashing"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
	"github.com/gomatrixlib/gomatrixlib/signing"
	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"
)

func rulesV10() roomversion.Rules { r, _ := roomversion.Get("10"); return r }

func BenchmarkEventID1KB(b *testing.B)  { benchEvents(b); benchEventIDMautrix(b, events1000[0]) }
func BenchmarkEventID60KB(b *testing.B) { benchEvents(b); benchEventIDMautrix(b, event60KB) }

// benchEventIDMautrix: mautrix-go computes the ID of a parsed PDU; its
// users parse the JSON first, so the parse is timed too.
func benchEventIDMautrix(b *testing.B, ev []byte) {
	rules := rulesV10()
	ours, _ := hashing.EventID(rules, ev)
	var p pdu.PDU
	if err := json.Unmarshal(ev, &p); err != nil {
		b.Fatal(err)
	}
	if got, err := p.GetEventID(id.RoomV10); err != nil || string(got) != ours {
		b.Fatalf("mautrix disagrees: %s %v", got, err)
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
	b.Run("mautrix", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(ev)))
		for b.Loop() {
			var p pdu.PDU
			if err := json.Unmarshal(ev, &p); err != nil {
				b.Fatal(err)
			}
			if _, err := p.GetEventID(id.RoomV10); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkVerifyEvents1000: mautrix-go parses each PDU, checks its
// content hash and its signature.
func BenchmarkVerifyEvents1000(b *testing.B) { benchVerifyEventsMautrix(b, signing.VerifyOptions{}) }

// BenchmarkVerifyEventsBatch1000 is the same with ours in the opt-in batch
// mode (signing.VerifyOptions.Batch).
func BenchmarkVerifyEventsBatch1000(b *testing.B) {
	benchVerifyEventsMautrix(b, signing.VerifyOptions{Batch: true})
}

func benchVerifyEventsMautrix(b *testing.B, opts signing.VerifyOptions) {
	benchEvents(b)
	rules := rulesV10()
	keys := fixedKey{benchKey.Public()}
	pub := id.SigningKey(signing.EncodeBase64(benchKey.Public()))
	getKey := func(string, id.KeyID, time.Time) (id.SigningKey, time.Time, error) {
		return pub, time.UnixMilli(1 << 50), nil
	}
	b.Run("ours", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for i, err := range signing.VerifyEventsWithOptions(context.Background(), rules, events1000, keys, opts) {
				if err != nil {
					b.Fatalf("event %d: %v", i, err)
				}
			}
		}
	})
	b.Run("mautrix", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, ev := range events1000 {
				var p pdu.PDU
				if err := json.Unmarshal(ev, &p); err != nil {
					b.Fatal(err)
				}
				if !p.VerifyContentHash() {
					b.Fatal("content hash")
				}
				if err := p.VerifySignature(id.RoomV10, benchServer, getKey); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
