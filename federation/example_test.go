package federation_test

import (
	"fmt"

	"github.com/gomatrixlib/gomatrixlib/federation"
	"github.com/gomatrixlib/gomatrixlib/signing"
)

func Example() {
	key, _ := signing.ParseKey("ed25519 1 YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1")
	h, _ := federation.SignRequest("domain", "remote.example", key.KeyID(), key.PrivateKey(), "GET", "/_matrix/federation/v1/version", nil)
	fmt.Println(h)
	a, _ := federation.ParseAuthorization(h)
	fmt.Println(a.Origin, a.Destination, a.KeyID)
	// Output:
	// X-Matrix origin="domain",destination="remote.example",key="ed25519:1",sig="wR1E4UZ3G3F2knf0x+RNgxQ2N/hCiZ/ZdOktAey0wSvTWc/nHH8YPJaOvRhipwX46AZPntLZhHd0DFjZ7H7iDQ"
	// domain remote.example ed25519:1
}
