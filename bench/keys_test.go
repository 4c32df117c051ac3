//go:build !goexperiment.jsonv2

package bench

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"testing"
	"time"

	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"

	"github.com/gomatrixlib/gomatrixlib/keys"
	"github.com/gomatrixlib/gomatrixlib/signing"
)

// keyResponse is a GET /_matrix/key/v2/server response for example.org
// signed with the spec's test key, plus one old key.
func keyResponse(b *testing.B) []byte {
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
// self-signature (what a server does with every fetched response).
func BenchmarkParseServerKeys(b *testing.B) {
	raw := keyResponse(b)
	b.Run("ours", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			if _, err := keys.Parse(raw, "example.org"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("gmsl", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(raw)))
		now := time.Now()
		for b.Loop() {
			var sk gomatrixserverlib.ServerKeys
			if err := json.Unmarshal(raw, &sk); err != nil {
				b.Fatal(err)
			}
			if checks, _ := gomatrixserverlib.CheckKeys(spec.ServerName("example.org"), now, sk); !checks.AllChecksOK {
				b.Fatal("gmsl rejected the response")
			}
		}
	})
}

// BenchmarkKeyCacheHit: look up a cached server key valid at a time.
func BenchmarkKeyCacheHit(b *testing.B) {
	raw := keyResponse(b)
	at := time.Now()
	b.Run("ours", func(b *testing.B) {
		sk, err := keys.Parse(raw, "example.org")
		if err != nil {
			b.Fatal(err)
		}
		ring := &keys.Ring{}
		if err := ring.Add(sk); err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ring.VerifyKey(ctx, "example.org", "ed25519:1", at); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("gmsl", func(b *testing.B) {
		// gomatrixserverlib's KeyRing asks a KeyDatabase; its lookup on a
		// parsed response is ServerKeys.PublicKey, measured here behind a
		// map keyed like the KeyRing's requests.
		var sk gomatrixserverlib.ServerKeys
		if err := json.Unmarshal(raw, &sk); err != nil {
			b.Fatal(err)
		}
		cache := map[gomatrixserverlib.PublicKeyLookupRequest]gomatrixserverlib.ServerKeys{
			{ServerName: "example.org", KeyID: "ed25519:1"}: sk,
		}
		ts := spec.AsTimestamp(at)
		b.ReportAllocs()
		for b.Loop() {
			got, ok := cache[gomatrixserverlib.PublicKeyLookupRequest{ServerName: "example.org", KeyID: "ed25519:1"}]
			if !ok || got.PublicKey("ed25519:1", ts) == nil {
				b.Fatal("miss")
			}
		}
	})
}
