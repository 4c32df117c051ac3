package signing

import (
	"bytes"
	"crypto/ed25519"
	"testing"

	"github.com/gomatrixlib/gomatrixlib/canonicaljson"
	"github.com/tidwall/sjson"
)

// TestSignJSONSplice compares SignJSON's spliced output with the plain
// construction: set the signature with sjson, then canonicalise the whole
// object.
func TestSignJSONSplice(t *testing.T) {
	k := specKey(t)
	for _, in := range []string{
		`{}`,
		`{"a":1}`,
		`{"z":1,"a":2}`,
		`{"signatures":{"other.org":{"ed25519:x":"abc"}},"unsigned":{"age":1},"m":[1,2]}`,
		`{"sigz":1,"signatures":{},"t":2,"unsigned":{},"uz":3,"v":4}`,
		`{"s":1,"sj":2,"unsignez":3}`,
		`{"\u0073ignaturez":1,"x\"y":2,"é":3,"😀":4,"unsigned":{"b":2,"a":1}}`,
		`{"signatures":{"domain":{"ed25519:0":"old"}},"b":{"d":1,"c":2}}`,
	} {
		got, err := SignJSON("domain", "ed25519:1", k.PrivateKey(), []byte(in))
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		signed, _ := canonicaljson.Append(nil, []byte(in), canonicaljson.Options{Omit: omitUnsigned})
		sig := EncodeBase64(ed25519.Sign(k.PrivateKey(), signed))
		set, err := sjson.SetBytes([]byte(in), "signatures.domain.ed25519\\:1", sig)
		if err != nil {
			t.Fatal(err)
		}
		want, err := canonicaljson.Canonicalize(set)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %s\nwant %s", in, got, want)
		}
		if err := VerifyJSON("domain", "ed25519:1", k.Public(), got); err != nil {
			t.Errorf("%s: %v", in, err)
		}
	}
	for _, bad := range []string{`{"signatures":[]}`, `{"signatures":{"domain":5}}`, `{"unsigned":1,"a":}`} {
		if _, err := SignJSON("domain", "ed25519:1", k.PrivateKey(), []byte(bad)); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}
