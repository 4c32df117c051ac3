package hashing

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/gomatrixlib/gomatrixlib/roomversion"
)

// checkOnePass asserts that SigningFormAndContentHash gives SigningForm's
// and ContentHash's results whenever it succeeds, and fails when both do.
func checkOnePass(t *testing.T, rules roomversion.Rules, ev []byte) bool {
	t.Helper()
	form, hash, err := SigningFormAndContentHash(rules, ev)
	wantForm, formErr := SigningForm(rules, ev)
	wantHash, hashErr := ContentHash(ev)
	if err != nil {
		if formErr == nil && hashErr == nil {
			t.Fatalf("v%s %s: one pass failed (%v), the separate functions did not", rules.ID, ev, err)
		}
		return false
	}
	if formErr != nil || hashErr != nil {
		t.Fatalf("v%s %s: one pass succeeded, separate: %v / %v", rules.ID, ev, formErr, hashErr)
	}
	if !bytes.Equal(form, wantForm) || !bytes.Equal(hash, wantHash) {
		t.Fatalf("v%s %s:\none pass %s %x\nseparate %s %x", rules.ID, ev, form, hash, wantForm, wantHash)
	}
	return true
}

func TestSigningFormAndContentHash(t *testing.T) {
	files, err := filepath.Glob("testdata/redaction/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no vectors: %v", err)
	}
	for _, f := range files {
		_, in, _ := readVector(t, f)
		for _, rules := range roomversion.All() {
			if !checkOnePass(t, rules, in) {
				t.Fatalf("%s fails in v%s", f, rules.ID)
			}
		}
	}
	for _, ev := range []string{
		`{"type":"m.room.message","zzz":1,"hashes":{"sha256":"x"}}`, // content absent, inserted before "hashes"
		`{"a":1}`,                                // content absent, appended at the end
		`{"type":"m.room.member","content":"x"}`, // content not an object
		`[1]`, `{"a":1,"a":2}`, `{"content":{},"content":{}}`,
	} {
		checkOnePass(t, mustRules(t, "10"), []byte(ev))
	}
}

func FuzzSigningFormAndContentHash(f *testing.F) {
	files, _ := filepath.Glob("testdata/redaction/*.json")
	for i, file := range files {
		raw, err := os.ReadFile(file)
		if lines := bytes.Split(raw, []byte("\n")); err == nil && len(lines) >= 2 {
			f.Add(lines[1], uint8(i))
		}
	}
	f.Add([]byte(`{"type":"m.room.message","zzz":1,"hashes":{"sha256":"x"}}`), uint8(3))
	versions := roomversion.All()
	f.Fuzz(func(t *testing.T, ev []byte, v uint8) {
		checkOnePass(t, versions[int(v)%len(versions)], ev)
	})
}
