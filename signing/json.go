package signing

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"unicode/utf8"

	"github.com/gomatrixlib/gomatrixlib/canonicaljson"
	"github.com/tidwall/gjson"
)

var omitUnsigned = []string{"signatures", "unsigned"}

// SignJSON signs the JSON object in as serverName with the key keyID and
// returns it in canonical form with the signature added under
// signatures[serverName][keyID]. The signatures and unsigned keys are not
// covered by the signature; signatures already present (of this or other
// servers) are kept. Errors wrap [ErrNotObject], [ErrBadKey] or
// canonicaljson's sentinels.
func SignJSON(serverName, keyID string, key ed25519.PrivateKey, in []byte) ([]byte, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: private key of %d bytes", ErrBadKey, len(key))
	}
	if !gjson.ParseBytes(in).IsObject() {
		return nil, ErrNotObject
	}
	// The common case, an object without signatures or unsigned: the
	// canonical object is what gets signed, and the signature goes in
	// at its place.
	if plainString(serverName) && plainString(keyID) {
		canon, err := canonicaljson.Append(make([]byte, 0, len(in)+128), in, canonicaljson.Options{})
		if err != nil {
			return nil, fmt.Errorf("signing: %w", err)
		}
		if at, ok := signaturesSlot(canon); ok {
			return insertSignatures(canon, at, serverName, keyID, ed25519.Sign(key, canon)), nil
		}
	}
	signed, err := canonicaljson.Append(make([]byte, 0, len(in)), in, canonicaljson.Options{Omit: omitUnsigned})
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	return spliceSignature(signed, in, serverName, keyID, ed25519.Sign(key, signed))
}

// addSignature returns in, in canonical form, with signatures[server][keyID]
// set to sig.
func addSignature(in []byte, serverName, keyID string, sig []byte) ([]byte, error) {
	canon, err := canonicaljson.Append(make([]byte, 0, len(in)), in, canonicaljson.Options{Omit: omitUnsigned})
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	return spliceSignature(canon, in, serverName, keyID, sig)
}

// spliceSignature builds the canonical signed object: canon (the canonical
// object without signatures and unsigned) with the signatures of in plus
// signatures[server][keyID] = sig, and in's unsigned, each inserted at its
// place in key order.
func spliceSignature(canon, in []byte, serverName, keyID string, sig []byte) ([]byte, error) {
	if !utf8.ValidString(serverName) || !utf8.ValidString(keyID) {
		return nil, fmt.Errorf("%w: server name or key ID is not valid UTF-8", ErrBadKey)
	}
	obj := gjson.ParseBytes(in)
	var sigsRaw, unsignedRaw string
	obj.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "signatures":
			sigsRaw = v.Raw
		case "unsigned":
			unsignedRaw = v.Raw
		}
		return true
	})
	if sigsRaw == "" {
		sigsRaw = "{}"
	}
	sigsCanon, err := mergeSignature(gjson.Parse(sigsRaw), serverName, keyID, EncodeBase64(sig))
	if err != nil {
		return nil, err
	}
	var unsignedCanon []byte
	if unsignedRaw != "" {
		if unsignedCanon, err = canonicaljson.Canonicalize([]byte(unsignedRaw)); err != nil {
			return nil, fmt.Errorf("signing: unsigned: %w", err)
		}
	}
	out := make([]byte, 0, len(canon)+len(sigsCanon)+len(unsignedCanon)+32)
	out = append(out, '{')
	first := true
	member := func(key string, raw []byte) {
		if !first {
			out = append(out, ',')
		}
		first = false
		out = append(out, '"')
		out = append(out, key...)
		out = append(out, '"', ':')
		out = append(out, raw...)
	}
	sigDone, unsignedDone := false, unsignedCanon == nil
	gjson.ParseBytes(canon).ForEach(func(k, v gjson.Result) bool {
		if !sigDone && k.Str > "signatures" {
			member("signatures", sigsCanon)
			sigDone = true
		}
		if !unsignedDone && k.Str > "unsigned" {
			member("unsigned", unsignedCanon)
			unsignedDone = true
		}
		if !first {
			out = append(out, ',')
		}
		first = false
		out = append(out, k.Raw...)
		out = append(out, ':')
		out = append(out, v.Raw...)
		return true
	})
	if !sigDone {
		member("signatures", sigsCanon)
	}
	if !unsignedDone {
		member("unsigned", unsignedCanon)
	}
	return append(out, '}'), nil
}

// plainString reports whether s is written as itself in canonical JSON:
// printable ASCII other than '"' and '\\'.
func plainString(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// signaturesSlot scans the top-level keys of the canonical object canon
// for where a signatures member would go: before the first key that sorts
// after "signatures". ok is false if canon has a signatures or unsigned
// member or does not scan. Comparing keys as written is enough: where one
// differs from "signatures" by an escape, both the escape's backslash and
// the character it stands for sort before any lowercase letter.
func signaturesSlot(canon []byte) (at int, ok bool) {
	if len(canon) < 2 || canon[0] != '{' || canon[len(canon)-1] != '}' {
		return 0, false
	}
	at = len(canon) - 1
	for i := 1; i < len(canon)-1; {
		end, ok := skipString(canon, i)
		if !ok || end >= len(canon) || canon[end] != ':' {
			return 0, false
		}
		switch key := string(canon[i+1 : end-1]); {
		case key == "signatures" || key == "unsigned":
			return 0, false
		case key > "signatures" && at == len(canon)-1:
			at = i
		}
		if i, ok = skipValue(canon, end+1); !ok {
			return 0, false
		}
		if canon[i] == ',' {
			i++
		} else if i != len(canon)-1 {
			return 0, false
		}
	}
	return at, true
}

// insertSignatures returns canon with "signatures":{server:{keyID:sig}}
// inserted at offset at (from signaturesSlot); server and keyID are plain
// strings.
func insertSignatures(canon []byte, at int, serverName, keyID string, sig []byte) []byte {
	b64 := EncodeBase64(sig)
	member := make([]byte, 0, len(serverName)+len(keyID)+len(b64)+32)
	if at == len(canon)-1 && at > 1 {
		member = append(member, ',')
	}
	member = append(member, `"signatures":{"`...)
	member = append(member, serverName...)
	member = append(member, `":{"`...)
	member = append(member, keyID...)
	member = append(member, `":"`...)
	member = append(member, b64...)
	member = append(member, `"}}`...)
	if at < len(canon)-1 {
		member = append(member, ',')
	}
	// Open a gap in canon and copy the member into it.
	canon = append(canon, member...)
	copy(canon[at+len(member):], canon[at:len(canon)-len(member)])
	copy(canon[at:], member)
	return canon
}

// skipString returns the index after the JSON string starting at b[i].
func skipString(b []byte, i int) (int, bool) {
	if i >= len(b) || b[i] != '"' {
		return 0, false
	}
	for j := i + 1; ; {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return 0, false
		}
		j += k
		n := 0
		for n < j-i-1 && b[j-1-n] == '\\' {
			n++
		}
		if n%2 == 0 {
			return j + 1, true
		}
		j++
	}
}

// skipValue returns the index after the compact JSON value at b[i].
func skipValue(b []byte, i int) (int, bool) {
	depth := 0
	for i < len(b) {
		switch b[i] {
		case '"':
			var ok bool
			if i, ok = skipString(b, i); !ok {
				return 0, false
			}
		case '{', '[':
			depth++
			i++
		case '}', ']':
			if depth == 0 {
				return i, true
			}
			depth--
			i++
		case ',':
			if depth == 0 {
				return i, true
			}
			i++
		default:
			i++
		}
		if depth == 0 && i < len(b) && (b[i] == ',' || b[i] == '}' || b[i] == ']') {
			return i, true
		}
	}
	return 0, false
}

// mergeSignature returns the canonical signatures object sigs with
// sigs[server][keyID] set to sig.
func mergeSignature(sigs gjson.Result, server, keyID, sig string) ([]byte, error) {
	if !sigs.IsObject() {
		return nil, fmt.Errorf("%w: signatures is not an object", ErrNotObject)
	}
	serverKey, err := canonicaljson.Marshal(server)
	if err != nil {
		return nil, fmt.Errorf("signing: server name: %w", err)
	}
	idKey, err := canonicaljson.Marshal(keyID)
	if err != nil {
		return nil, fmt.Errorf("signing: key ID: %w", err)
	}
	// Every member but the one replaced, then the new one; Canonicalize
	// sorts (and rejects duplicate keys).
	// members appends obj's members but skip and returns skip's value;
	// a repeated skip is an error, as Canonicalize reports other repeats.
	members := func(b []byte, obj gjson.Result, skip string) ([]byte, gjson.Result, error) {
		var skipped gjson.Result
		var err error
		obj.ForEach(func(k, v gjson.Result) bool {
			if k.Str != skip {
				b = append(append(append(b, k.Raw...), ':'), v.Raw...)
				b = append(b, ',')
				return true
			}
			if skipped.Exists() {
				err = fmt.Errorf("signing: signatures: %w: key %q", canonicaljson.ErrDuplicateKey, skip)
				return false
			}
			skipped = v
			return true
		})
		return b, skipped, err
	}
	b, ours, err := members([]byte{'{'}, sigs, server)
	if err != nil {
		return nil, err
	}
	if ours.Exists() && !ours.IsObject() {
		return nil, fmt.Errorf("%w: signatures of %q is not an object", ErrNotObject, server)
	}
	b = append(append(b, serverKey...), ':', '{')
	if b, _, err = members(b, ours, keyID); err != nil {
		return nil, err
	}
	b = append(append(b, idKey...), ':', '"')
	b = append(append(b, sig...), '"', '}', '}')
	out, err := canonicaljson.Canonicalize(b)
	if err != nil {
		return nil, fmt.Errorf("signing: signatures: %w", err)
	}
	return out, nil
}

// findSignature returns signatures[server][keyID] from a parsed object.
func findSignature(obj gjson.Result, server, keyID string) (string, bool) {
	var sig string
	found := false
	obj.ForEach(func(k, v gjson.Result) bool {
		if k.Str != "signatures" {
			return true
		}
		v.ForEach(func(sk, sv gjson.Result) bool {
			if sk.Str != server {
				return true
			}
			sv.ForEach(func(kk, kv gjson.Result) bool {
				if kk.Str == keyID && kv.Type == gjson.String {
					sig, found = kv.Str, true
					return false
				}
				return true
			})
			return false
		})
		return false
	})
	return sig, found
}

// VerifyJSON checks the signature of serverName with key keyID on the JSON
// object in. Errors wrap [ErrMissingSignature], [ErrBadBase64],
// [ErrBadSignature], [ErrNotObject] or canonicaljson's sentinels.
func VerifyJSON(serverName, keyID string, pub ed25519.PublicKey, in []byte) error {
	obj := gjson.ParseBytes(in)
	if !obj.IsObject() {
		return ErrNotObject
	}
	sigB64, ok := findSignature(obj, serverName, keyID)
	if !ok {
		return fmt.Errorf("%w: no signature by %s with %s", ErrMissingSignature, serverName, keyID)
	}
	signed, err := canonicaljson.Append(make([]byte, 0, len(in)), in, canonicaljson.Options{Omit: omitUnsigned})
	if err != nil {
		return fmt.Errorf("signing: %w", err)
	}
	return verifyB64(pub, signed, sigB64, serverName, keyID)
}

func verifyB64(pub ed25519.PublicKey, msg []byte, sigB64, serverName, keyID string) error {
	sig, err := DecodeBase64(sigB64)
	if err != nil {
		return err
	}
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: public key of %d bytes", ErrBadKey, len(pub))
	}
	if len(sig) != ed25519.SignatureSize || !ed25519.Verify(pub, msg, sig) {
		return fmt.Errorf("%w: %s with %s", ErrBadSignature, serverName, keyID)
	}
	return nil
}
