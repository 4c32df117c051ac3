package signing

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gomatrixlib/gomatrixlib/hashing"
	"github.com/gomatrixlib/gomatrixlib/id"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
	"github.com/tidwall/gjson"
)

// KeyLookup finds servers' public keys for event verification. Package
// keys provides a caching implementation.
type KeyLookup interface {
	// VerifyKey returns the public key keyID of server. validAt is the
	// event's origin_server_ts when the room version enforces key validity
	// and the zero time otherwise (any time will do). A key that exists
	// but was not valid at validAt gives an error wrapping [ErrKeyExpired];
	// an unknown key one wrapping [ErrUnknownKey].
	VerifyKey(ctx context.Context, server, keyID string, validAt time.Time) (ed25519.PublicKey, error)
}

// SignEvent signs the event as serverName: it adds the content hash if the
// event has none, signs the event's redacted form and returns the full
// event, in canonical form, with the signature added.
func SignEvent(rules roomversion.Rules, serverName, keyID string, key ed25519.PrivateKey, event []byte) ([]byte, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: private key of %d bytes", ErrBadKey, len(key))
	}
	ev := event
	if !gjson.GetBytes(event, "hashes.sha256").Exists() {
		var err error
		if ev, err = hashing.AddContentHash(event); err != nil {
			return nil, err
		}
	}
	signed, err := signedPart(rules, ev)
	if err != nil {
		return nil, err
	}
	return addSignature(ev, serverName, keyID, ed25519.Sign(key, signed))
}

// signedPart returns the bytes an event signature covers: the canonical
// redacted event without signatures and unsigned.
func signedPart(rules roomversion.Rules, event []byte) ([]byte, error) {
	return hashing.SigningForm(rules, event)
}

// RequiredSigners returns the servers whose signatures the event must
// carry in its room version: the sender's server (except for an invite
// made from a third-party invite, which another server may send); when
// rules.SignedByEventIDServer, the server of the event ID too; and when
// rules.RestrictedJoins, for a join with join_authorised_via_users_server,
// that user's server. Each server appears once.
func RequiredSigners(rules roomversion.Rules, event []byte) ([]string, error) {
	obj := gjson.ParseBytes(event)
	if !obj.IsObject() {
		return nil, ErrNotObject
	}
	var out []string
	add := func(s string) {
		for _, x := range out {
			if x == s {
				return
			}
		}
		out = append(out, s)
	}
	sender := obj.Get("sender")
	uid, err := id.ParseUserID(sender.Str)
	if sender.Type != gjson.String || err != nil {
		return nil, fmt.Errorf("signing: event sender %q is not a user ID", truncate(sender.Raw))
	}
	evType := obj.Get("type").Str
	membership := obj.Get("content.membership").Str
	isMember := evType == "m.room.member"
	if !(isMember && membership == "invite" && obj.Get("content.third_party_invite").Exists()) {
		add(uid.Server().String())
	}
	if rules.SignedByEventIDServer {
		eid, err := id.ParseEventID(obj.Get("event_id").Str)
		if err != nil {
			return nil, fmt.Errorf("signing: event_id: %w", err)
		}
		if sn, ok := eid.Server(); ok {
			add(sn.String())
		}
	}
	if rules.RestrictedJoins && isMember && membership == "join" {
		if via := obj.Get(`content.join_authorised_via_users_server`); via.Exists() {
			vu, err := id.ParseUserID(via.Str)
			if via.Type != gjson.String || err != nil {
				return nil, fmt.Errorf("signing: join_authorised_via_users_server %q is not a user ID", truncate(via.Raw))
			}
			add(vu.Server().String())
		}
	}
	return out, nil
}

// VerifyEvent checks that every server in [RequiredSigners] signed the
// event with a key that keys returns (valid at the event's
// origin_server_ts when rules.EnforceKeyValidity), then checks the content
// hash. Signatures with unknown algorithms, unknown keys or keys not valid
// at the time are skipped, as the spec says; a server none of whose
// signatures verifies fails the event.
//
// Errors wrap [ErrMissingSignature], [ErrUnknownKey], [ErrKeyExpired],
// [ErrBadSignature], [ErrBadBase64] for signature problems; after good
// signatures, hashing.ErrContentHashMismatch or
// hashing.ErrMissingContentHash, in which case the spec says to keep the
// event redacted ([hashing.Redact]) rather than drop it.
func VerifyEvent(ctx context.Context, rules roomversion.Rules, event []byte, keys KeyLookup) error {
	p, err := prepareEvent(rules, event)
	if err != nil {
		return err
	}
	for _, server := range p.signers {
		if err := verifyServer(ctx, keys, p.sigs, server, p.signed, p.validAt); err != nil {
			return err
		}
	}
	return hashing.CheckContentHash(event)
}

// eventToVerify is what signature checks need from an event.
type eventToVerify struct {
	signers []string
	signed  []byte // the bytes the signatures cover
	validAt time.Time
	sigs    gjson.Result
}

func prepareEvent(rules roomversion.Rules, event []byte) (eventToVerify, error) {
	var p eventToVerify
	var err error
	if p.signers, err = RequiredSigners(rules, event); err != nil {
		return p, err
	}
	if p.signed, err = signedPart(rules, event); err != nil {
		return p, err
	}
	obj := gjson.ParseBytes(event)
	if rules.EnforceKeyValidity {
		ts := obj.Get("origin_server_ts")
		if ts.Type != gjson.Number {
			return p, fmt.Errorf("signing: origin_server_ts is not a number")
		}
		p.validAt = time.UnixMilli(ts.Int())
	}
	p.sigs = obj.Get("signatures")
	if !p.sigs.IsObject() {
		return p, fmt.Errorf("%w: no signatures object", ErrMissingSignature)
	}
	return p, nil
}

// serverSignatures returns the signatures object of server.
func serverSignatures(sigs gjson.Result, server string) gjson.Result {
	var out gjson.Result
	sigs.ForEach(func(k, v gjson.Result) bool {
		if k.Str == server {
			out = v
			return false
		}
		return true
	})
	return out
}

// verifyServer passes if at least one ed25519 signature of server verifies.
func verifyServer(ctx context.Context, keys KeyLookup, sigs gjson.Result, server string, signed []byte, validAt time.Time) error {
	serverSigs := serverSignatures(sigs, server)
	if !serverSigs.IsObject() {
		return fmt.Errorf("%w: no signatures by %s", ErrMissingSignature, server)
	}
	var firstErr error
	tried := false
	ok := false
	serverSigs.ForEach(func(k, v gjson.Result) bool {
		if !strings.HasPrefix(k.Str, "ed25519:") {
			return true // unknown algorithm: ignored
		}
		tried = true
		if v.Type != gjson.String {
			if firstErr == nil {
				firstErr = fmt.Errorf("%w: signature %s of %s is not a string", ErrBadSignature, k.Str, server)
			}
			return true
		}
		pub, err := keys.VerifyKey(ctx, server, k.Str, validAt)
		if err != nil {
			if firstErr == nil || (errors.Is(firstErr, ErrUnknownKey) && !errors.Is(err, ErrUnknownKey)) {
				firstErr = fmt.Errorf("signing: key %s of %s: %w", k.Str, server, err)
			}
			return true
		}
		if err := verifyB64(pub, signed, v.Str, server, k.Str); err != nil {
			firstErr = err
			return true
		}
		ok = true
		return false
	})
	if ok {
		return nil
	}
	if !tried {
		return fmt.Errorf("%w: no ed25519 signature by %s", ErrMissingSignature, server)
	}
	return firstErr
}
