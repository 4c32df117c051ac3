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
	return requiredSigners(rules, topFields(obj))
}

// fields are the top-level members of an event that verification reads,
// found in one pass (the first of duplicate keys, as gjson.Get finds).
type fields struct {
	sender, typ, eventID, ts, sigs, content gjson.Result
}

func topFields(obj gjson.Result) fields {
	var f fields
	obj.ForEach(func(k, v gjson.Result) bool {
		var dst *gjson.Result
		switch k.Str {
		case "sender":
			dst = &f.sender
		case "type":
			dst = &f.typ
		case "event_id":
			dst = &f.eventID
		case "origin_server_ts":
			dst = &f.ts
		case "signatures":
			dst = &f.sigs
		case "content":
			dst = &f.content
		default:
			return true
		}
		if !dst.Exists() {
			*dst = v
		}
		return true
	})
	return f
}

func requiredSigners(rules roomversion.Rules, f fields) ([]string, error) {
	var out []string
	add := func(s string) {
		for _, x := range out {
			if x == s {
				return
			}
		}
		out = append(out, s)
	}
	uid, err := id.ParseUserID(f.sender.Str)
	if f.sender.Type != gjson.String || err != nil {
		return nil, fmt.Errorf("signing: event sender %q is not a user ID", truncate(f.sender.Raw))
	}
	isMember := f.typ.Str == "m.room.member"
	var membership string
	if isMember {
		membership = f.content.Get("membership").Str
	}
	if !(isMember && membership == "invite" && f.content.Get("third_party_invite").Exists()) {
		add(uid.Server().String())
	}
	if rules.SignedByEventIDServer {
		eid, err := id.ParseEventID(f.eventID.Str)
		if err != nil {
			return nil, fmt.Errorf("signing: event_id: %w", err)
		}
		if sn, ok := eid.Server(); ok {
			add(sn.String())
		}
	}
	if rules.RestrictedJoins && isMember && membership == "join" {
		if via := f.content.Get(`join_authorised_via_users_server`); via.Exists() {
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
// hash. Every signature of a required server made with a key that keys
// returns must verify, and each required server needs at least one;
// signatures with unknown algorithms, unknown keys or keys not valid at
// the time are skipped, as the spec says.
//
// Errors wrap [ErrMissingSignature], [ErrUnknownKey], [ErrKeyExpired],
// [ErrBadSignature], [ErrBadBase64] for signature problems; after good
// signatures, hashing.ErrContentHashMismatch or
// hashing.ErrMissingContentHash, in which case the spec says to keep the
// event redacted ([hashing.Redact]) rather than drop it.
func VerifyEvent(ctx context.Context, rules roomversion.Rules, event []byte, keys KeyLookup) error {
	p, contentHash, err := prepareFast(rules, event)
	if err != nil {
		// Let the separate steps name the problem, in their order.
		if p, err = prepareEvent(rules, event); err != nil {
			return err
		}
		contentHash = nil
	}
	for _, server := range p.signers {
		if err := verifyServer(ctx, keys, p.sigs, server, p.signed, p.validAt); err != nil {
			return err
		}
	}
	if contentHash == nil {
		return hashing.CheckContentHash(event)
	}
	return hashing.MatchContentHash(event, contentHash)
}

// eventToVerify is what signature checks need from an event.
type eventToVerify struct {
	signers []string
	signed  []byte // the bytes the signatures cover
	validAt time.Time
	sigs    gjson.Result
}

// prepareEvent takes the steps one by one: required signers, signing
// form, origin_server_ts, signatures.
func prepareEvent(rules roomversion.Rules, event []byte) (eventToVerify, error) {
	var p eventToVerify
	var err error
	if p.signers, err = RequiredSigners(rules, event); err != nil {
		return p, err
	}
	if p.signed, err = signedPart(rules, event); err != nil {
		return p, err
	}
	return p, finishPrepare(rules, &p, topFields(gjson.ParseBytes(event)))
}

// prepareFast is prepareEvent from one canonical pass and one field pass,
// with the content hash as well. When it fails, prepareEvent gives the
// error; when it succeeds, its result is prepareEvent's.
func prepareFast(rules roomversion.Rules, event []byte) (eventToVerify, []byte, error) {
	var p eventToVerify
	signed, contentHash, err := hashing.SigningFormAndContentHash(rules, event)
	if err != nil {
		return p, nil, err
	}
	f := topFields(gjson.ParseBytes(event))
	if p.signers, err = requiredSigners(rules, f); err != nil {
		return p, nil, err
	}
	p.signed = signed
	return p, contentHash, finishPrepare(rules, &p, f)
}

func finishPrepare(rules roomversion.Rules, p *eventToVerify, f fields) error {
	if rules.EnforceKeyValidity {
		if f.ts.Type != gjson.Number {
			return fmt.Errorf("signing: origin_server_ts is not a number")
		}
		p.validAt = time.UnixMilli(f.ts.Int())
	}
	p.sigs = f.sigs
	if !p.sigs.IsObject() {
		return fmt.Errorf("%w: no signatures object", ErrMissingSignature)
	}
	return nil
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

// verifyServer passes if at least one ed25519 signature of server
// verifies and every signature under a key that keys returns verifies.
// Signatures under other algorithms, and under key IDs keys does not
// return (unknown, not valid at validAt, lookup failed), are skipped.
func verifyServer(ctx context.Context, keys KeyLookup, sigs gjson.Result, server string, signed []byte, validAt time.Time) error {
	serverSigs := serverSignatures(sigs, server)
	if !serverSigs.IsObject() {
		return fmt.Errorf("%w: no signatures by %s", ErrMissingSignature, server)
	}
	var lookupErr, badErr error
	tried := false
	ok := false
	serverSigs.ForEach(func(k, v gjson.Result) bool {
		if !strings.HasPrefix(k.Str, "ed25519:") {
			return true // unknown algorithm: ignored
		}
		tried = true
		pub, err := keys.VerifyKey(ctx, server, k.Str, validAt)
		if err != nil {
			if lookupErr == nil || (errors.Is(lookupErr, ErrUnknownKey) && !errors.Is(err, ErrUnknownKey)) {
				lookupErr = fmt.Errorf("signing: key %s of %s: %w", k.Str, server, err)
			}
			return true
		}
		if v.Type != gjson.String {
			badErr = fmt.Errorf("%w: signature %s of %s is not a string", ErrBadSignature, k.Str, server)
			return false
		}
		if err := verifyB64(pub, signed, v.Str, server, k.Str); err != nil {
			badErr = err
			return false
		}
		ok = true
		return true
	})
	switch {
	case badErr != nil:
		return badErr
	case ok:
		return nil
	case !tried:
		return fmt.Errorf("%w: no ed25519 signature by %s", ErrMissingSignature, server)
	}
	return lookupErr
}
