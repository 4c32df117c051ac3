package roomtest

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"sync"
	"time"

	"github.com/gomatrixlib/gomatrixlib/signing"
)

// KeyID is the key ID of every key a [Keyring] derives.
const KeyID = "ed25519:roomtest"

// Keyring holds the signing keys of the servers in test rooms. The key of a
// server name is derived from the name (a fixed, public seed), so two
// keyrings, and two test runs, agree on it: never use these keys outside
// tests. A keyring also holds public keys of servers whose private keys it
// does not know, such as the server under test. It implements
// signing.KeyLookup and is safe for concurrent use.
type Keyring struct {
	mu     sync.Mutex
	keys   map[string]*signing.Key
	public map[string]map[string]ed25519.PublicKey
}

// NewKeyring returns an empty keyring.
func NewKeyring() *Keyring {
	return &Keyring{keys: map[string]*signing.Key{}, public: map[string]map[string]ed25519.PublicKey{}}
}

// Key returns the signing key of server, deriving it on first use (or the
// key given to [Keyring.Add]).
func (k *Keyring) Key(server string) *signing.Key {
	k.mu.Lock()
	defer k.mu.Unlock()
	if key, ok := k.keys[server]; ok {
		return key
	}
	seed := sha256.Sum256([]byte("gomatrixlib roomtest key of " + server))
	key, err := signing.NewKey(KeyID, ed25519.NewKeyFromSeed(seed[:]))
	if err != nil {
		panic("roomtest: " + err.Error()) // KeyID is valid
	}
	k.keys[server] = key
	return key
}

// Add makes key the signing key of server, replacing the derived one.
func (k *Keyring) Add(server string, key *signing.Key) {
	k.mu.Lock()
	k.keys[server] = key
	k.mu.Unlock()
}

// AddPublic records a public key of a server the kit does not sign for (the
// server under test), so that VerifyKey finds it.
func (k *Keyring) AddPublic(server, keyID string, pub ed25519.PublicKey) {
	k.mu.Lock()
	if k.public[server] == nil {
		k.public[server] = map[string]ed25519.PublicKey{}
	}
	k.public[server][keyID] = pub
	k.mu.Unlock()
}

// VerifyKey implements signing.KeyLookup: it knows the keys of the servers
// that signed something through this keyring, or were added. Keys never
// expire. An unknown key gives an error wrapping signing.ErrUnknownKey.
func (k *Keyring) VerifyKey(_ context.Context, server, keyID string, _ time.Time) (ed25519.PublicKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if pub, ok := k.public[server][keyID]; ok {
		return pub, nil
	}
	if key, ok := k.keys[server]; ok && key.KeyID() == keyID {
		return key.Public(), nil
	}
	return nil, fmt.Errorf("%w: %s %s", signing.ErrUnknownKey, server, keyID)
}
