//go:build goexperiment.jsonv2

package bench

import (
	"crypto/ed25519"
	"encoding/json"
	"testing"
	"time"

	"maunium.net/go/mautrix/federation"
	"maunium.net/go/mautrix/id"

	"github.com/gomatrixlib/gomatrixlib/keys"
	"github.com/gomatrixlib/gomatrixlib/signing"
)

// keyResponseV2 is keyResponse of keys_test.go (that file is not built
// with GOEXPERIMENT=jsonv2, so the operation names can be shared).
func keyResponseV2(b *testing.B) []byte {
	b.Helper()
	seed, err := signing.DecodeBase64("YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1")
	if err != nil {
		b.Fatal(err)
	}
	k, err := signing.NewKey("ed25519:1", ed25519.NewKeyFromSeed(seed))
	if err != nil {
		b.Fatal(err)
	}
	old, _ := signing.GenerateKey("ed25519:old")
	raw, err := keys.Build("example.org", time.Now().Add(24*time.Hour).UnixMilli(), []*signing.Key{k},
		[]keys.OldKey{{KeyID: "ed25519:old", Public: old.Public(), ExpiredTS: 1532645052628}})
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

// BenchmarkParseServerKeys: parse a key response and verify its
// self-signature.
func BenchmarkParseServerKeys(b *testing.B) {
	raw := keyResponseV2(b)
	b.Run("mautrix", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			var sk federation.ServerKeyResponse
			if err := json.Unmarshal(raw, &sk); err != nil {
				b.Fatal(err)
			}
			if sk.ServerName != "example.org" {
				b.Fatal("server name")
			}
			if err := sk.VerifySelfSignature(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkKeyCacheHit: look up a cached server key valid at a time.
func BenchmarkKeyCacheHit(b *testing.B) {
	raw := keyResponseV2(b)
	var sk federation.ServerKeyResponse
	if err := json.Unmarshal(raw, &sk); err != nil {
		b.Fatal(err)
	}
	cache := federation.NewInMemoryCache()
	cache.StoreKeys(&sk)
	at := time.Now()
	b.Run("mautrix", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			got, err := cache.LoadKeys("example.org")
			if err != nil || got == nil || !got.HasKey(id.KeyID("ed25519:1")) || got.ValidUntilTS.Time.Before(at) {
				b.Fatal("miss", err)
			}
		}
	})
}
