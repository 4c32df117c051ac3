package keys

import "errors"

// Sentinel errors; errors returned by this package wrap one of these (or a
// signing sentinel where stated).
var (
	// ErrMalformed: the key response is not valid JSON of the expected
	// shape (missing or mistyped field, bad key ID, bad base64, wrong key
	// length, duplicate member).
	ErrMalformed = errors.New("keys: malformed key response")
	// ErrTooLarge: a response, or a count of keys or servers in it,
	// exceeds a bound.
	ErrTooLarge = errors.New("keys: key response too large")
	// ErrWrongServer: server_name is not the server that was asked for.
	ErrWrongServer = errors.New("keys: server_name mismatch")
	// ErrSelfSignature: a key in verify_keys did not sign the response, or
	// its signature does not verify.
	ErrSelfSignature = errors.New("keys: bad or missing self-signature")
	// ErrNotarySignature: a notary response object lacks a valid signature
	// by the notary's trusted keys.
	ErrNotarySignature = errors.New("keys: bad or missing notary signature")
	// ErrExpired: valid_until_ts is in the past (direct fetch).
	ErrExpired = errors.New("keys: key response expired")
	// ErrKeyConflict: a response publishes a different public key under a
	// key ID the ring already holds for that server.
	ErrKeyConflict = errors.New("keys: different key under a known key ID")
	// ErrFetch: fetching keys over HTTP failed (transport error or non-200).
	ErrFetch = errors.New("keys: fetch failed")
)
