//go:build !goexperiment.jsonv2

package bench

import (
	"testing"

	"github.com/gomatrixlib/gomatrixlib/canonicaljson"
	"github.com/matrix-org/gomatrixserverlib"
)

func BenchmarkCanonicalize1KB(b *testing.B)  { benchCanonicalize(b, canonicalInputs[0].in) }
func BenchmarkCanonicalize60KB(b *testing.B) { benchCanonicalize(b, canonicalInputs[1].in) }

func benchCanonicalize(b *testing.B, in []byte) {
	// Both must agree before we time them.
	ours, err := canonicaljson.Canonicalize(in)
	if err != nil {
		b.Fatal(err)
	}
	theirs, err := gomatrixserverlib.CanonicalJSON(in)
	if err != nil || string(theirs) != string(ours) {
		b.Fatalf("gomatrixserverlib disagrees: %v", err)
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
	b.Run("gmsl", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(in)))
		for b.Loop() {
			if _, err := gomatrixserverlib.CanonicalJSON(in); err != nil {
				b.Fatal(err)
			}
		}
	})
}
