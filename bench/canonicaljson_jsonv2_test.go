//go:build goexperiment.jsonv2

package bench

import (
	"testing"

	"github.com/gomatrixlib/gomatrixlib/canonicaljson"
	mcanonical "maunium.net/go/mautrix/crypto/canonicaljson"
)

func BenchmarkCanonicalize1KB(b *testing.B)  { benchCanonicalizeMautrix(b, canonicalInputs[0].in) }
func BenchmarkCanonicalize60KB(b *testing.B) { benchCanonicalizeMautrix(b, canonicalInputs[1].in) }

func benchCanonicalizeMautrix(b *testing.B, in []byte) {
	ours, _ := canonicaljson.Canonicalize(in)
	theirs, err := mcanonical.CanonicalJSON(in)
	if err != nil || string(theirs) != string(ours) {
		b.Fatalf("mautrix disagrees: %v", err)
	}
	b.Run("ours", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(in)))
		for b.Loop() {
			if _, err := canonicaljson.Canonicalize(in); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("mautrix", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(in)))
		for b.Loop() {
			if _, err := mcanonical.CanonicalJSON(in); err != nil {
				b.Fatal(err)
			}
		}
	})
}
