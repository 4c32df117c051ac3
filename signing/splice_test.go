package signing

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"testing"

	"github.com/gomatrixlib/gomatrixlib/canonicaljson"
	"github.com/tidwall/gjson"
)

// TestSignJSONSplice compares SignJSON's spliced output with the plain
// construction: set the signature with sjson, then canonicalise the whole
// object.
func TestSignJSONSplice(t *testing.T) {
	k := specKey(t)
	for _, in := range spliceCases {
		if !checkSplice(t, k, "domain", "ed25519:1", []byte(in)) {
			t.Errorf("%s: not signed or not comparable", in)
		}
	}
	for _, bad := range []string{`{"signatures":[]}`, `{"signatures":{"domain":5}}`, `{"unsigned":1,"a":}`} {
		if _, err := SignJSON("domain", "ed25519:1", k.PrivateKey(), []byte(bad)); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}

// TestSignJSONOddNames: names the old sjson-based merge got wrong.
func TestSignJSONOddNames(t *testing.T) {
	k := specKey(t)
	got, err := SignJSON("b", "0", k.PrivateKey(), []byte(`{"signatures":{"aaa":{}}}`))
	if err != nil || !bytes.Contains(got, []byte(`"b":{"0":"`)) {
		t.Errorf("numeric key ID: %s %v", got, err)
	}
	if _, err := SignJSON("domain", "ed25519:\xe8", k.PrivateKey(), []byte(`{}`)); !errors.Is(err, ErrBadKey) {
		t.Errorf("key ID with invalid UTF-8: %v", err)
	}
	if _, err := SignJSON("domain", "ed25519:1", k.PrivateKey(), []byte(`{"signatures":{"domain":{},"domain":{}}}`)); !errors.Is(err, canonicaljson.ErrDuplicateKey) {
		t.Errorf("repeated server in signatures: %v", err)
	}
}

var spliceCases = []string{
	`{}`,
	`{"a":1}`,
	`{"z":1,"a":2}`,
	`{"signatures":{"other.org":{"ed25519:x":"abc"}},"unsigned":{"age":1},"m":[1,2]}`,
	`{"sigz":1,"signatures":{},"t":2,"unsigned":{},"uz":3,"v":4}`,
	`{"s":1,"sj":2,"unsignez":3}`,
	`{"\u0073ignaturez":1,"x\"y":2,"é":3,"😀":4,"unsigned":{"b":2,"a":1}}`,
	`{"signatures":{"domain":{"ed25519:0":"old"}},"b":{"d":1,"c":2}}`,
	// Without signatures or unsigned: the signature is inserted into the
	// canonical bytes.
	`{"z":{"a":[1,{"}":"]"}],"b":"\\\""},"sig":true,"t":"x\\"}`,
	`{"a\"b":1,"sigz":[],"s\\":2,"sign\n":3}`,
	`{"zz":null}`, `{"aa":-1.5e3}`, `{"t":"é😀","r":[[],{}]}`,
}

// checkSplice compares a successful SignJSON with the plain construction:
// set the signature with sjson, then canonicalise the whole object.
func checkSplice(t *testing.T, k *Key, server, keyID string, in []byte) (compared bool) {
	t.Helper()
	got, err := SignJSON(server, keyID, k.PrivateKey(), in)
	if err != nil {
		return false
	}
	signed, err := canonicaljson.Append(nil, in, canonicaljson.Options{Omit: omitUnsigned})
	if err != nil {
		t.Fatalf("%s: signed but does not canonicalise: %v", in, err)
	}
	sig := ed25519.Sign(k.PrivateKey(), signed)
	want, ok := plainSigned(in, server, keyID, EncodeBase64(sig))
	if !ok {
		return false
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s:\n got %s\nwant %s", in, got, want)
	}
	if err := VerifyJSON(server, keyID, k.Public(), got); err != nil {
		t.Fatalf("%s: %v", in, err)
	}
	return true
}

// plainSigned builds the signed object the slow way: the top-level
// members in a map, the signature set in a decoded signatures map,
// everything marshalled and canonicalised. ok is false for input it cannot
// represent (other servers' signatures that are not objects).
func plainSigned(in []byte, server, keyID, sig string) (_ []byte, ok bool) {
	top := map[string]json.RawMessage{}
	gjson.ParseBytes(in).ForEach(func(k, v gjson.Result) bool {
		top[k.Str] = json.RawMessage(v.Raw)
		return true
	})
	sigs := map[string]map[string]json.RawMessage{}
	if raw, ok := top["signatures"]; ok {
		if json.Unmarshal(raw, &sigs) != nil {
			return nil, false
		}
	}
	if sigs[server] == nil {
		sigs[server] = map[string]json.RawMessage{}
	}
	sigs[server][keyID], _ = json.Marshal(sig)
	top["signatures"], _ = json.Marshal(sigs)
	whole, err := json.Marshal(top)
	if err != nil {
		return nil, false
	}
	out, err := canonicaljson.Canonicalize(whole)
	return out, err == nil
}

func FuzzSignJSON(f *testing.F) {
	for _, c := range spliceCases {
		f.Add([]byte(c), "domain", "ed25519:1")
	}
	f.Add([]byte(`{"a":1}`), "a.b", "ed25519:x\"y")
	k := specKey(f)
	f.Fuzz(func(t *testing.T, in []byte, server, keyID string) {
		checkSplice(t, k, server, keyID, in)
	})
}
