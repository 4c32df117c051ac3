package signing

import (
	"crypto/ed25519"
	"fmt"
	"strings"

	"github.com/gomatrixlib/gomatrixlib/canonicaljson"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
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
	sigsJSON := gjson.Parse(sigsRaw)
	if !sigsJSON.IsObject() {
		return nil, fmt.Errorf("%w: signatures is not an object", ErrNotObject)
	}
	if s := sigsJSON.Get(escapePath(serverName)); s.Exists() && !s.IsObject() {
		return nil, fmt.Errorf("%w: signatures of %q is not an object", ErrNotObject, serverName)
	}
	merged, err := sjson.SetBytes([]byte(sigsRaw), escapePath(serverName)+"."+escapePath(keyID), EncodeBase64(sig))
	if err != nil {
		return nil, fmt.Errorf("signing: adding signature: %w", err)
	}
	sigsCanon, err := canonicaljson.Canonicalize(merged)
	if err != nil {
		return nil, fmt.Errorf("signing: signatures: %w", err)
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

// escapePath escapes a key for use as one component of a gjson/sjson path.
func escapePath(key string) string {
	if !strings.ContainsAny(key, `.*?|#@\!=<>%:`) {
		return key
	}
	var b strings.Builder
	for i := 0; i < len(key); i++ {
		if strings.IndexByte(`.*?|#@\!=<>%:`, key[i]) >= 0 {
			b.WriteByte('\\')
		}
		b.WriteByte(key[i])
	}
	return b.String()
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
