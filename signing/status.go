package signing

import (
	"context"
	"crypto/ed25519"
	"time"
)

// KeyStatus says how a server publishes one of its keys.
type KeyStatus uint8

const (
	// KeyCurrent is a key listed under verify_keys: it verifies events
	// and requests.
	KeyCurrent KeyStatus = iota + 1
	// KeyOld is a key listed under old_verify_keys: it verifies events
	// made up to its expired_ts and never authenticates a request.
	KeyOld
)

// String returns "current", "old" or "unknown".
func (s KeyStatus) String() string {
	switch s {
	case KeyCurrent:
		return "current"
	case KeyOld:
		return "old"
	}
	return "unknown"
}

// KeyStatusLookup is a [KeyLookup] that also says whether a key is
// current or old. Request authentication (package federation) uses it to
// refuse old keys; event verification needs only VerifyKey. keys.Ring
// and [KeyMap] implement it.
type KeyStatusLookup interface {
	KeyLookup
	// LookupKey is VerifyKey that also returns the key's status, with
	// the same errors.
	LookupKey(ctx context.Context, server, keyID string, validAt time.Time) (ed25519.PublicKey, KeyStatus, error)
}
