package keys

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/gomatrixlib/gomatrixlib/signing"
)

// Bounds applied by [Parse].
const (
	// MaxResponseBytes bounds one server keys object.
	MaxResponseBytes = 64 << 10
	// MaxVerifyKeys bounds verify_keys (each must self-sign, so each costs
	// a signature verification).
	MaxVerifyKeys = 16
	// MaxOldVerifyKeys bounds old_verify_keys.
	MaxOldVerifyKeys = 256
	// maxSignatureEntities bounds the entities in "signatures".
	maxSignatureEntities = 16
)

// MaxValidityMS is how long a response may be trusted at most after it was
// fetched: the spec makes servers use min(valid_until_ts, fetch time + 7
// days).
const MaxValidityMS = 7 * 24 * 60 * 60 * 1000

// ServerKeys is a parsed server keys object (GET /_matrix/key/v2/server or
// one element of a notary's server_keys) whose self-signatures verified.
// Treat it as read-only.
type ServerKeys struct {
	// ServerName is the server the keys belong to.
	ServerName string
	// VerifyKeys maps key ID ("ed25519:abc") to the current public keys.
	// Keys of algorithms other than ed25519 are not included.
	VerifyKeys map[string]ed25519.PublicKey
	// OldVerifyKeys maps key ID to retired keys.
	OldVerifyKeys map[string]OldVerifyKey
	// ValidUntilTS is valid_until_ts, POSIX milliseconds.
	ValidUntilTS int64
	// Raw is the JSON object as received, signatures included.
	Raw []byte
}

// OldVerifyKey is a retired key from old_verify_keys.
type OldVerifyKey struct {
	// Key is the public key.
	Key ed25519.PublicKey
	// ExpiredTS is when the key stopped being used, POSIX milliseconds.
	ExpiredTS int64
}

// OldKey describes a retired key of our own server for [Build].
type OldKey struct {
	// KeyID is the key's ID, e.g. "ed25519:old".
	KeyID string
	// Public is the public key.
	Public ed25519.PublicKey
	// ExpiredTS is when the key stopped being used, POSIX milliseconds.
	ExpiredTS int64
}

// Build returns our own server keys object: server_name, verify_keys with
// the public halves of current, old_verify_keys from old, valid_until_ts,
// signed by every key in current. The output is canonical JSON.
//
// Errors: [ErrMalformed] when current is empty, a key ID is invalid or
// repeated, or a key has the wrong length; signing errors are wrapped.
func Build(serverName string, validUntilTS int64, current []*signing.Key, old []OldKey) ([]byte, error) {
	if len(current) == 0 {
		return nil, fmt.Errorf("%w: no current keys", ErrMalformed)
	}
	if err := checkServerName(serverName); err != nil {
		return nil, err
	}
	type vk struct {
		Key string `json:"key"`
	}
	type ovk struct {
		ExpiredTS int64  `json:"expired_ts"`
		Key       string `json:"key"`
	}
	verify := make(map[string]vk, len(current))
	for _, k := range current {
		if k == nil || len(k.Public()) != ed25519.PublicKeySize || !ed25519KeyID(k.KeyID()) {
			return nil, fmt.Errorf("%w: invalid current key", ErrMalformed)
		}
		if _, dup := verify[k.KeyID()]; dup {
			return nil, fmt.Errorf("%w: key ID %q repeated", ErrMalformed, k.KeyID())
		}
		verify[k.KeyID()] = vk{signing.EncodeBase64(k.Public())}
	}
	obj := map[string]any{
		"server_name":    serverName,
		"valid_until_ts": validUntilTS,
		"verify_keys":    verify,
	}
	if len(old) > 0 {
		olds := make(map[string]ovk, len(old))
		for _, o := range old {
			_, dupV := verify[o.KeyID]
			_, dupO := olds[o.KeyID]
			if !ed25519KeyID(o.KeyID) || len(o.Public) != ed25519.PublicKeySize || dupV || dupO {
				return nil, fmt.Errorf("%w: invalid or repeated old key %q", ErrMalformed, o.KeyID)
			}
			olds[o.KeyID] = ovk{o.ExpiredTS, signing.EncodeBase64(o.Public)}
		}
		obj["old_verify_keys"] = olds
	}
	out, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("keys: build: %w", err)
	}
	for _, k := range current {
		if out, err = signing.SignJSON(serverName, k.KeyID(), k.PrivateKey(), out); err != nil {
			return nil, fmt.Errorf("keys: build: %w", err)
		}
	}
	return out, nil
}

// Parse parses a server keys object and verifies it: valid JSON object
// within [MaxResponseBytes]; server_name equal to serverName (unless
// serverName is ""); valid_until_ts an integer; verify_keys with at least
// one ed25519 key and at most [MaxVerifyKeys] keys; old_verify_keys (optional)
// with at most [MaxOldVerifyKeys] keys, each with an integer expired_ts;
// every key ID "<algorithm>:<[a-zA-Z0-9_]+>", every ed25519 key 32 bytes of
// base64; and a valid signature by server_name with every ed25519 key in
// verify_keys. Keys of other algorithms are skipped. Expiry is not checked
// here (see [Fetcher]).
//
// Errors wrap [ErrMalformed], [ErrTooLarge], [ErrWrongServer] or
// [ErrSelfSignature] (which in turn wraps the signing error).
func Parse(raw []byte, serverName string) (*ServerKeys, error) {
	if len(raw) > MaxResponseBytes {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(raw))
	}
	if !gjson.ValidBytes(raw) {
		return nil, fmt.Errorf("%w: invalid JSON", ErrMalformed)
	}
	root := gjson.ParseBytes(raw)
	if !root.IsObject() {
		return nil, fmt.Errorf("%w: not a JSON object", ErrMalformed)
	}
	fields, err := members(root, "top level", 64)
	if err != nil {
		return nil, err
	}
	sk := &ServerKeys{Raw: raw}

	name, _ := fields.get("server_name")
	if name.Type != gjson.String {
		return nil, fmt.Errorf("%w: server_name missing or not a string", ErrMalformed)
	}
	sk.ServerName = name.Str
	if serverName != "" && sk.ServerName != serverName {
		return nil, fmt.Errorf("%w: got %q, want %q", ErrWrongServer, sk.ServerName, serverName)
	}
	if err := checkServerName(sk.ServerName); err != nil {
		return nil, err
	}
	vut, _ := fields.get("valid_until_ts")
	if sk.ValidUntilTS, err = intField(vut, "valid_until_ts"); err != nil {
		return nil, err
	}

	vks, ok := fields.get("verify_keys")
	if !ok || !vks.IsObject() {
		return nil, fmt.Errorf("%w: verify_keys missing or not an object", ErrMalformed)
	}
	vkm, err := members(vks, "verify_keys", MaxVerifyKeys)
	if err != nil {
		return nil, err
	}
	sk.VerifyKeys = make(map[string]ed25519.PublicKey, len(vkm))
	for _, m := range vkm {
		id, v := m.key, m.val
		if !v.IsObject() {
			return nil, fmt.Errorf("%w: verify_keys[%q] not an object", ErrMalformed, id)
		}
		km, err := members(v, "verify_keys entry", 16)
		if err != nil {
			return nil, err
		}
		kv, _ := km.get("key")
		pub, isEd, err := parseKey(id, kv)
		if err != nil {
			return nil, err
		}
		if isEd {
			sk.VerifyKeys[id] = pub
		}
	}
	if len(sk.VerifyKeys) == 0 {
		return nil, fmt.Errorf("%w: no ed25519 key in verify_keys", ErrMalformed)
	}

	if ovks, ok := fields.get("old_verify_keys"); ok {
		if !ovks.IsObject() {
			return nil, fmt.Errorf("%w: old_verify_keys not an object", ErrMalformed)
		}
		om, err := members(ovks, "old_verify_keys", MaxOldVerifyKeys)
		if err != nil {
			return nil, err
		}
		sk.OldVerifyKeys = make(map[string]OldVerifyKey, len(om))
		for _, m := range om {
			id, v := m.key, m.val
			if !v.IsObject() {
				return nil, fmt.Errorf("%w: old_verify_keys[%q] not an object", ErrMalformed, id)
			}
			km, err := members(v, "old_verify_keys entry", 16)
			if err != nil {
				return nil, err
			}
			kv, _ := km.get("key")
			pub, isEd, err := parseKey(id, kv)
			if err != nil {
				return nil, err
			}
			ev, _ := km.get("expired_ts")
			exp, err := intField(ev, "expired_ts")
			if err != nil {
				return nil, err
			}
			if !isEd {
				continue
			}
			if cur, dup := sk.VerifyKeys[id]; dup && !cur.Equal(pub) {
				return nil, fmt.Errorf("%w: key ID %q has different keys in verify_keys and old_verify_keys", ErrMalformed, id)
			}
			sk.OldVerifyKeys[id] = OldVerifyKey{Key: pub, ExpiredTS: exp}
		}
	}

	sigs, ok := fields.get("signatures")
	if !ok || !sigs.IsObject() {
		return nil, fmt.Errorf("%w: signatures missing or not an object", ErrSelfSignature)
	}
	if _, err := members(sigs, "signatures", maxSignatureEntities); err != nil {
		return nil, err
	}
	for _, id := range sortedIDs(sk.VerifyKeys) {
		if err := signing.VerifyJSON(sk.ServerName, id, sk.VerifyKeys[id], raw); err != nil {
			return nil, fmt.Errorf("%w: %s %s: %w", ErrSelfSignature, sk.ServerName, id, err)
		}
	}
	return sk, nil
}

// VerifyNotary checks that sk carries a valid signature by notary with at
// least one of notaryKeys (key ID to public key) and that no signature of
// a listed key is bad. Errors wrap [ErrNotarySignature].
func VerifyNotary(sk *ServerKeys, notary string, notaryKeys map[string]ed25519.PublicKey) error {
	if sk.ServerName == notary {
		// The notary is vouching for itself: its self-signatures are the
		// notary signatures; require one by a trusted key.
		for id, pub := range notaryKeys {
			if have, ok := sk.VerifyKeys[id]; ok && have.Equal(pub) {
				return nil
			}
		}
		return fmt.Errorf("%w: %s lists none of its trusted keys", ErrNotarySignature, notary)
	}
	good := 0
	sigs := gjson.GetBytes(sk.Raw, "signatures."+escapePath(notary))
	for _, id := range sortedIDs(notaryKeys) {
		if !sigs.Get(escapePath(id)).Exists() {
			continue
		}
		if err := signing.VerifyJSON(notary, id, notaryKeys[id], sk.Raw); err != nil {
			return fmt.Errorf("%w: %s %s: %w", ErrNotarySignature, notary, id, err)
		}
		good++
	}
	if good == 0 {
		return fmt.Errorf("%w: no signature by %s with a trusted key", ErrNotarySignature, notary)
	}
	return nil
}

// KeyValidUntil returns the last POSIX millisecond at which the key may be
// used to verify events, given when the response was fetched: for a current
// key min(valid_until_ts, fetchedMS + 7 days), for an old key its
// expired_ts. ok is false if keyID is not in sk.
func (sk *ServerKeys) KeyValidUntil(keyID string, fetchedMS int64) (pub ed25519.PublicKey, until int64, ok bool) {
	if k, ok := sk.VerifyKeys[keyID]; ok {
		return k, min(sk.ValidUntilTS, fetchedMS+MaxValidityMS), true
	}
	if k, ok := sk.OldVerifyKeys[keyID]; ok {
		return k.Key, k.ExpiredTS, true
	}
	return nil, 0, false
}

// member is one member of a JSON object.
type member struct {
	key string
	val gjson.Result
}

// memberList is an object's members in order; objects here are small, so
// lookups scan.
type memberList []member

// get returns the value of member k (the zero Result if absent).
func (m memberList) get(k string) (gjson.Result, bool) {
	for i := range m {
		if m[i].key == k {
			return m[i].val, true
		}
	}
	return gjson.Result{}, false
}

// members returns the members of obj, rejecting duplicates and more than
// limit members.
func members(obj gjson.Result, what string, limit int) (memberList, error) {
	out := make(memberList, 0, 8)
	var seen map[string]bool // used once the list is too long to scan
	var err error
	obj.ForEach(func(k, v gjson.Result) bool {
		if len(out) >= limit {
			err = fmt.Errorf("%w: %s: more than %d members", ErrTooLarge, what, limit)
			return false
		}
		dup := false
		if len(out) < 16 {
			_, dup = out.get(k.Str)
		} else {
			if seen == nil {
				seen = make(map[string]bool, 2*len(out))
				for _, m := range out {
					seen[m.key] = true
				}
			}
			dup = seen[k.Str]
			seen[k.Str] = true
		}
		if dup {
			err = fmt.Errorf("%w: %s: duplicate member %q", ErrMalformed, what, k.Str)
			return false
		}
		out = append(out, member{k.Str, v})
		return true
	})
	return out, err
}

// parseKey validates a key ID and, for ed25519, decodes its key.
func parseKey(keyID string, key gjson.Result) (ed25519.PublicKey, bool, error) {
	alg, err := parseKeyID(keyID)
	if err != nil {
		return nil, false, err
	}
	if key.Type != gjson.String {
		return nil, false, fmt.Errorf("%w: key %q: \"key\" missing or not a string", ErrMalformed, keyID)
	}
	if alg != "ed25519" {
		return nil, false, nil
	}
	b, err := signing.DecodeBase64(key.Str)
	if err != nil {
		return nil, false, fmt.Errorf("%w: key %q: %w", ErrMalformed, keyID, err)
	}
	if len(b) != ed25519.PublicKeySize {
		return nil, false, fmt.Errorf("%w: key %q: %d bytes, want %d", ErrMalformed, keyID, len(b), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), true, nil
}

func ed25519KeyID(keyID string) bool {
	alg, err := parseKeyID(keyID)
	return err == nil && alg == "ed25519"
}

// intField reads a JSON integer within the canonical-JSON range.
func intField(v gjson.Result, name string) (int64, error) {
	if v.Type != gjson.Number || strings.ContainsAny(v.Raw, ".eE") {
		return 0, fmt.Errorf("%w: %s missing or not an integer", ErrMalformed, name)
	}
	n := v.Int()
	const limit = 1<<53 - 1
	if n > limit || n < -limit || v.Raw != fmt.Sprint(n) && v.Raw != "-0" {
		return 0, fmt.Errorf("%w: %s out of range", ErrMalformed, name)
	}
	return n, nil
}

func sortedIDs[V any](m map[string]V) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// escapePath escapes a literal member name for a gjson path.
func escapePath(s string) string {
	var b strings.Builder
	for _, c := range s {
		switch c {
		case '.', '*', '?', '|', '#', '@', '\\', ':', '!', '=', '<', '>', '%', '(', ')', '[', ']', '{', '}', ',', '"':
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}
