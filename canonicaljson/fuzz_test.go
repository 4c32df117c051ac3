package canonicaljson

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"
)

// FuzzCanonicalize: whatever the input, no panic; accepted input gives a
// canonical form that is valid JSON, is a fixed point, means the same as the
// input, and is accepted by strict mode exactly when strict mode accepts
// the input.
func FuzzCanonicalize(f *testing.F) {
	ins, _ := filepath.Glob("testdata/*.in.json")
	for _, p := range ins {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{`{"a":1e2,"b":[1.5,-0]}`, `"\ud83d\ude00"`, `{"b":{},"a":[]}`, `[[[[]]]]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := Canonicalize(in)
		strictOut, strictErr := CanonicalizeStrict(in)
		if err != nil {
			if strictErr == nil {
				t.Fatalf("strict accepted what lenient rejected: %q", in)
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("output is not valid JSON: %q -> %q", in, out)
		}
		// Bytes at or above 0x80 may only appear inside strings, where
		// they must form valid UTF-8, so accepted input is valid UTF-8.
		if !utf8.Valid(in) || !utf8.Valid(out) {
			t.Fatalf("invalid UTF-8 accepted: %q -> %q", in, out)
		}
		again, err := Canonicalize(out)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("not a fixed point: %q -> %q -> %q (%v)", in, out, again, err)
		}
		if strictErr == nil && !bytes.Equal(strictOut, out) {
			t.Fatalf("strict and lenient differ: %q vs %q", strictOut, out)
		}
		if json.Valid(in) {
			assertSameMeaning(t, in, out)
		}
	})
}
