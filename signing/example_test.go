package signing_test

import (
	"fmt"

	"github.com/gomatrixlib/gomatrixlib/signing"
)

func Example() {
	// The spec appendix's test key.
	key, err := signing.ParseKey("ed25519 1 YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1")
	if err != nil {
		panic(err)
	}
	signed, _ := signing.SignJSON("domain", key.KeyID(), key.PrivateKey(), []byte(`{"one":1,"two":"Two"}`))
	fmt.Println(string(signed))
	fmt.Println(signing.VerifyJSON("domain", key.KeyID(), key.Public(), signed))
	// Output:
	// {"one":1,"signatures":{"domain":{"ed25519:1":"KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw"}},"two":"Two"}
	// <nil>
}
