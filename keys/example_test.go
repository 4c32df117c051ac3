package keys_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/gomatrixlib/gomatrixlib/keys"
	"github.com/gomatrixlib/gomatrixlib/signing"
)

func Example() {
	// The spec's test key (seed YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1).
	seed, _ := signing.DecodeBase64("YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1")
	key, err := signing.NewKey("ed25519:1", ed25519.NewKeyFromSeed(seed))
	if err != nil {
		fmt.Println(err)
		return
	}

	// What GET /_matrix/key/v2/server returns for us.
	raw, err := keys.Build("example.org", 1652262000000, []*signing.Key{key}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	sk, err := keys.Parse(raw, "example.org")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(sk.ServerName, signing.EncodeBase64(sk.VerifyKeys["ed25519:1"]))

	// A ring holding those keys answers signing.KeyLookup.
	ring := &keys.Ring{Now: func() time.Time { return time.UnixMilli(1652000000000) }}
	if err := ring.Add(sk); err != nil {
		fmt.Println(err)
		return
	}
	_, err = ring.VerifyKey(context.Background(), "example.org", "ed25519:1", time.UnixMilli(1652262000000))
	fmt.Println("valid at valid_until_ts:", err == nil)
	_, err = ring.VerifyKey(context.Background(), "example.org", "ed25519:1", time.UnixMilli(1652262000001))
	fmt.Println("valid 1 ms later:", !errors.Is(err, signing.ErrKeyExpired))
	// Output:
	// example.org XGX0JRS2Af3be3knz2fBiRbApjm2Dh61gXDJA8kcJNI
	// valid at valid_until_ts: true
	// valid 1 ms later: false
}
