package signing

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"time"
)

// KeyMap is a ready-to-use, in-memory [KeyStatusLookup]: server name →
// key ID → key. Build it as a literal or with [KeyMap.Add]; it is safe
// for concurrent lookups as long as nobody modifies it meanwhile.
//
//	keys := signing.KeyMap{"example.org": {"ed25519:1": {Public: pub}}}
//	err := signing.VerifyEvent(ctx, rules, event, keys)
type KeyMap map[string]map[string]KnownKey

// KnownKey is one public key of a [KeyMap].
type KnownKey struct {
	// Public is the ed25519 public key.
	Public ed25519.PublicKey
	// ValidUntil is the last moment the key verifies a signature: the
	// server's valid_until_ts for a current key, expired_ts for an old
	// one. Zero: no limit.
	ValidUntil time.Time
	// Old marks a key listed under old_verify_keys: it verifies events
	// made up to ValidUntil and never authenticates a request.
	Old bool
}

var _ KeyStatusLookup = KeyMap(nil)

// Add sets the key keyID of server, making the inner map if needed.
func (m KeyMap) Add(server, keyID string, k KnownKey) {
	if m[server] == nil {
		m[server] = make(map[string]KnownKey)
	}
	m[server][keyID] = k
}

// VerifyKey implements [KeyLookup]. Errors wrap [ErrUnknownKey] or
// [ErrKeyExpired] (validAt after ValidUntil).
func (m KeyMap) VerifyKey(ctx context.Context, server, keyID string, validAt time.Time) (ed25519.PublicKey, error) {
	pub, _, err := m.LookupKey(ctx, server, keyID, validAt)
	return pub, err
}

// LookupKey implements [KeyStatusLookup]: VerifyKey with the key's
// status, [KeyOld] when Old is set and [KeyCurrent] otherwise.
func (m KeyMap) LookupKey(_ context.Context, server, keyID string, validAt time.Time) (ed25519.PublicKey, KeyStatus, error) {
	k, ok := m[server][keyID]
	if !ok {
		return nil, 0, fmt.Errorf("%w: %s %s", ErrUnknownKey, server, keyID)
	}
	if !validAt.IsZero() && !k.ValidUntil.IsZero() && validAt.After(k.ValidUntil) {
		return nil, 0, fmt.Errorf("%w: %s %s valid until %d, not at %d", ErrKeyExpired, server, keyID, k.ValidUntil.UnixMilli(), validAt.UnixMilli())
	}
	status := KeyCurrent
	if k.Old {
		status = KeyOld
	}
	return k.Public, status, nil
}
