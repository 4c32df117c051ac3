package signing

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/gomatrixlib/gomatrixlib/id"
)

// Sentinel errors.
var (
	ErrBadBase64        = errors.New("signing: invalid base64")
	ErrBadKey           = errors.New("signing: invalid key")
	ErrBadSignature     = errors.New("signing: signature does not verify")
	ErrMissingSignature = errors.New("signing: missing signature")
	ErrUnknownKey       = errors.New("signing: unknown key")
	ErrKeyExpired       = errors.New("signing: key was not valid at the event's time")
	ErrNotObject        = errors.New("signing: input is not a JSON object")
)

// Key is an ed25519 signing key with its key ID. Its private half is
// reachable only through [Key.PrivateKey], so that it is not printed or
// marshalled by accident.
type Key struct {
	keyID string
	priv  ed25519.PrivateKey
}

// NewKey wraps an ed25519 private key with its key ID. The key ID must be
// "ed25519:" and a version of [a-zA-Z0-9_].
func NewKey(keyID string, priv ed25519.PrivateKey) (*Key, error) {
	if err := checkKeyID(keyID); err != nil {
		return nil, err
	}
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: private key of %d bytes", ErrBadKey, len(priv))
	}
	return &Key{keyID: keyID, priv: priv}, nil
}

func checkKeyID(keyID string) error {
	k, err := id.ParseKeyID(keyID)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadKey, err)
	}
	if k.Algorithm() != "ed25519" {
		return fmt.Errorf("%w: algorithm %q, want ed25519", ErrBadKey, k.Algorithm())
	}
	return nil
}

// GenerateKey makes a new random key with the given key ID.
func GenerateKey(keyID string) (*Key, error) {
	if err := checkKeyID(keyID); err != nil {
		return nil, err
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return &Key{keyID: keyID, priv: priv}, nil
}

// MaxKeyFileBytes bounds the input of [ParseKey].
const MaxKeyFileBytes = 64 << 10

// pemType is the PEM block type of Dendrite's key files.
const pemType = "MATRIX PRIVATE KEY"

// ParseKey reads a signing key file in either of the forms homeservers
// write:
//
//   - Synapse's one line "ed25519 <version> <unpadded base64 seed>" (the
//     key ID is "ed25519:<version>"); a trailing newline is allowed. This
//     is the form [Key.MarshalText] writes.
//   - Dendrite's PEM block "MATRIX PRIVATE KEY" with a "Key-ID:
//     ed25519:<version>" header and the 32-byte seed as its data, as
//     Dendrite 0.13 writes it (generate-keys). Text around the block and
//     other PEM blocks are ignored; the first MATRIX PRIVATE KEY block is
//     used, as Dendrite does. This is the form [Key.MarshalPEM] writes.
//
// Input longer than [MaxKeyFileBytes] is refused. Errors wrap
// [ErrBadKey] or [ErrBadBase64].
func ParseKey(text string) (*Key, error) {
	if len(text) > MaxKeyFileBytes {
		return nil, fmt.Errorf("%w: key file of %d bytes", ErrBadKey, len(text))
	}
	if strings.Contains(text, "-----BEGIN ") {
		return parsePEM([]byte(text))
	}
	line := strings.TrimRight(text, "\r\n")
	if len(line) > 512 {
		return nil, fmt.Errorf("%w: key line of %d bytes", ErrBadKey, len(line))
	}
	f := strings.Split(line, " ")
	if len(f) != 3 {
		return nil, fmt.Errorf("%w: want \"ed25519 <version> <seed>\" or a MATRIX PRIVATE KEY PEM block", ErrBadKey)
	}
	if f[0] != "ed25519" {
		return nil, fmt.Errorf("%w: algorithm %q, want ed25519", ErrBadKey, f[0])
	}
	keyID := "ed25519:" + f[1]
	if err := checkKeyID(keyID); err != nil {
		return nil, err
	}
	seed, err := DecodeBase64(f[2])
	if err != nil {
		return nil, err
	}
	return keyFromSeed(keyID, seed)
}

func keyFromSeed(keyID string, seed []byte) (*Key, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("%w: seed of %d bytes, want 32", ErrBadKey, len(seed))
	}
	return &Key{keyID: keyID, priv: ed25519.NewKeyFromSeed(seed)}, nil
}

// parsePEM reads the first MATRIX PRIVATE KEY block of data.
func parsePEM(data []byte) (*Key, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, fmt.Errorf("%w: no %s PEM block", ErrBadKey, pemType)
		}
		if b.Type != pemType {
			continue
		}
		keyID, ok := b.Headers["Key-ID"]
		if !ok {
			return nil, fmt.Errorf("%w: %s block without a Key-ID header", ErrBadKey, pemType)
		}
		if err := checkKeyID(keyID); err != nil {
			return nil, err
		}
		return keyFromSeed(keyID, b.Bytes)
	}
}

// MarshalPEM returns the key in Dendrite's key file form: a PEM block
// "MATRIX PRIVATE KEY" with a Key-ID header and the seed as its data.
func (k *Key) MarshalPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: pemType, Headers: map[string]string{"Key-ID": k.keyID}, Bytes: k.priv.Seed()})
}

// MarshalText returns the key file form "ed25519 <version> <seed>".
func (k *Key) MarshalText() ([]byte, error) {
	return []byte("ed25519 " + strings.TrimPrefix(k.keyID, "ed25519:") + " " + EncodeBase64(k.priv.Seed())), nil
}

// KeyID returns the key ID, such as "ed25519:a_1".
func (k *Key) KeyID() string { return k.keyID }

// Public returns the public key.
func (k *Key) Public() ed25519.PublicKey { return k.priv.Public().(ed25519.PublicKey) }

// PublicBase64 returns the public key in unpadded base64, as key server
// responses carry it.
func (k *Key) PublicBase64() string { return EncodeBase64(k.Public()) }

// PrivateKey returns the private key.
func (k *Key) PrivateKey() ed25519.PrivateKey { return k.priv }

// String returns the key ID only, never the private key.
func (k *Key) String() string { return "signing.Key(" + k.keyID + ")" }
