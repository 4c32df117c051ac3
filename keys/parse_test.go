package keys

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomatrixlib/gomatrixlib/signing"
)

type vector struct {
	file, expect, server string
	body                 []byte
}

// loadVectors reads testdata/responses/*.txt (made by gen_vectors.py with
// python3-signedjson): "expect: <class>", "server: <name>", then the body.
func loadVectors(t testing.TB) []vector {
	t.Helper()
	files, err := filepath.Glob("testdata/responses/*.txt")
	if err != nil || len(files) < 10 {
		t.Fatalf("key response vectors missing: %v (%d files)", err, len(files))
	}
	var out []vector
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		l1, rest, _ := strings.Cut(string(data), "\n")
		l2, body, _ := strings.Cut(rest, "\n")
		expect, ok1 := strings.CutPrefix(l1, "expect: ")
		server, ok2 := strings.CutPrefix(l2, "server: ")
		if !ok1 || !ok2 {
			t.Fatalf("%s: bad header", f)
		}
		out = append(out, vector{f, expect, server, []byte(body)})
	}
	return out
}

func expectErr(t *testing.T, class string) error {
	switch class {
	case "ok":
		return nil
	case "malformed":
		return ErrMalformed
	case "too-large":
		return ErrTooLarge
	case "wrong-server":
		return ErrWrongServer
	case "self-signature":
		return ErrSelfSignature
	}
	t.Fatalf("unknown expectation %q", class)
	return nil
}

func TestParseVectors(t *testing.T) {
	specPub := mustB64(t, "XGX0JRS2Af3be3knz2fBiRbApjm2Dh61gXDJA8kcJNI")
	for _, v := range loadVectors(t) {
		t.Run(filepath.Base(v.file), func(t *testing.T) {
			want := expectErr(t, v.expect)
			sk, err := Parse(v.body, v.server)
			if want != nil {
				if !errors.Is(err, want) || sk != nil {
					t.Fatalf("Parse = %v, %v; want error %v", sk, err, want)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if sk.ServerName != "example.org" || sk.ValidUntilTS != 1652262000000 || !bytes.Equal(sk.Raw, v.body) {
				t.Errorf("fields: %+v", sk)
			}
			if !sk.VerifyKeys["ed25519:1"].Equal(ed25519.PublicKey(specPub)) {
				t.Errorf("ed25519:1 = %x, want the spec test key", sk.VerifyKeys["ed25519:1"])
			}
			for id := range sk.VerifyKeys {
				if !strings.HasPrefix(id, "ed25519:") {
					t.Errorf("non-ed25519 key kept: %s", id)
				}
			}
			if old, ok := sk.OldVerifyKeys["ed25519:old"]; ok && old.ExpiredTS != 1532645052628 {
				t.Errorf("old key expired_ts %d", old.ExpiredTS)
			}
		})
	}
}

func mustB64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := signing.DecodeBase64(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func FuzzParse(f *testing.F) {
	for _, v := range loadVectors(f) {
		f.Add(v.body, v.server)
	}
	f.Fuzz(func(t *testing.T, body []byte, server string) {
		sk, err := Parse(body, server)
		if err != nil {
			if sk != nil {
				t.Fatal("result with error")
			}
			for _, s := range []error{ErrMalformed, ErrTooLarge, ErrWrongServer, ErrSelfSignature} {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("error without sentinel: %v", err)
		}
		// Accepted: every verify key must have signed the body.
		if server != "" && sk.ServerName != server {
			t.Fatalf("server %q accepted for %q", sk.ServerName, server)
		}
		if len(sk.VerifyKeys) == 0 || len(sk.VerifyKeys) > MaxVerifyKeys || len(sk.OldVerifyKeys) > MaxOldVerifyKeys {
			t.Fatalf("bounds: %d verify, %d old", len(sk.VerifyKeys), len(sk.OldVerifyKeys))
		}
		for id, pub := range sk.VerifyKeys {
			if len(pub) != ed25519.PublicKeySize {
				t.Fatalf("key %s has %d bytes", id, len(pub))
			}
			if err := signing.VerifyJSON(sk.ServerName, id, pub, body); err != nil {
				t.Fatalf("accepted without a valid signature by %s: %v", id, err)
			}
		}
	})
}

func FuzzSplitServerKeys(f *testing.F) {
	for _, v := range loadVectors(f) {
		f.Add(append(append([]byte(`{"server_keys":[`), v.body...), "]}"...))
	}
	f.Add([]byte(`{"server_keys":[]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		objs, err := splitServerKeys(body)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error without sentinel: %v", err)
			}
			return
		}
		if len(objs) > MaxNotaryObjects {
			t.Fatalf("%d objects", len(objs))
		}
		for _, o := range objs {
			if len(o) == 0 || o[0] != '{' {
				t.Fatalf("non-object element %q", o)
			}
			Parse(o, "")
		}
	})
}
