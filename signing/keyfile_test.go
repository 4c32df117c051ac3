package signing

import (
	"errors"
	"strings"
	"testing"
)

// dendritePEM is the spec appendix key in the layout Dendrite 0.13 writes
// (encoding/pem: the Key-ID header, a blank line, the padded base64 seed).
const dendritePEM = `-----BEGIN MATRIX PRIVATE KEY-----
Key-ID: ed25519:1

YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA0=
-----END MATRIX PRIVATE KEY-----
`

// TestParseKeyReadsSynapseAndDendriteFiles: both key file forms give the
// same key; MarshalPEM writes what ParseKey reads.
func TestParseKeyReadsSynapseAndDendriteFiles(t *testing.T) {
	synapse, err := ParseKey(specKeyLine + "\n")
	if err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{
		"dendrite":              dendritePEM,
		"no blank line":         strings.Replace(dendritePEM, "\n\n", "\n", 1),
		"other blocks and text": "a comment\n-----BEGIN OTHER-----\nAAAA\n-----END OTHER-----\n" + dendritePEM + "trailing\n",
		"MarshalPEM":            string(synapse.MarshalPEM()),
	} {
		k, err := ParseKey(text)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if k.KeyID() != "ed25519:1" || k.PublicBase64() != synapse.PublicBase64() {
			t.Errorf("%s: %s %s, want ed25519:1 %s", name, k.KeyID(), k.PublicBase64(), synapse.PublicBase64())
		}
	}
	if k, _ := ParseKey(dendritePEM); k == nil || k.PublicBase64() != "XGX0JRS2Af3be3knz2fBiRbApjm2Dh61gXDJA8kcJNI" {
		t.Errorf("public key of the spec key: %v", k)
	}
}

func TestParseKeyRejectsBadPEM(t *testing.T) {
	for name, text := range map[string]string{
		"no Key-ID":       strings.Replace(dendritePEM, "Key-ID: ed25519:1\n", "", 1),
		"other algorithm": strings.Replace(dendritePEM, "ed25519:1", "curve25519:1", 1),
		"bad key ID":      strings.Replace(dendritePEM, "ed25519:1", "ed25519:a-b", 1),
		"short seed":      strings.Replace(dendritePEM, "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA0=", "YJDBA9Xnr2sVqXD9", 1),
		"long seed":       strings.Replace(dendritePEM, "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA0=", "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1YJDB", 1),
		"only other type": strings.ReplaceAll(dendritePEM, "MATRIX PRIVATE KEY", "PRIVATE KEY"),
		"unterminated":    strings.Replace(dendritePEM, "-----END MATRIX PRIVATE KEY-----\n", "", 1),
		"too large":       dendritePEM + strings.Repeat("x", MaxKeyFileBytes),
	} {
		if k, err := ParseKey(text); !errors.Is(err, ErrBadKey) {
			t.Errorf("%s: %v %v, want ErrBadKey", name, k, err)
		}
	}
}

// FuzzParseKeyPEM: whatever ParseKey reads from PEM input, MarshalPEM and
// MarshalText give back the same key.
func FuzzParseKeyPEM(f *testing.F) {
	f.Add(dendritePEM)
	f.Add(strings.Replace(dendritePEM, "\n\n", "\n", 1))
	f.Add("x\n-----BEGIN OTHER-----\nAAAA\n-----END OTHER-----\n" + dendritePEM)
	f.Fuzz(func(t *testing.T, text string) {
		k, err := ParseKey(text)
		if err != nil {
			return
		}
		fromPEM, err := ParseKey(string(k.MarshalPEM()))
		if err != nil || fromPEM.KeyID() != k.KeyID() || fromPEM.PublicBase64() != k.PublicBase64() {
			t.Fatalf("PEM round trip of %q: %v", text, err)
		}
		line, _ := k.MarshalText()
		fromLine, err := ParseKey(string(line))
		if err != nil || fromLine.KeyID() != k.KeyID() || fromLine.PublicBase64() != k.PublicBase64() {
			t.Fatalf("text round trip of %q: %v", text, err)
		}
	})
}
