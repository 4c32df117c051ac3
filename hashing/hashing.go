package hashing

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"

	"github.com/gomatrixlib/gomatrixlib/canonicaljson"
	"github.com/gomatrixlib/gomatrixlib/id"
	"github.com/gomatrixlib/gomatrixlib/internal/b64"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// Sentinel errors.
var (
	// ErrNotObject: the event is not a JSON object (or its content is not).
	ErrNotObject = errors.New("hashing: event is not a JSON object")
	// ErrMissingContentHash: the event has no hashes.sha256 string.
	ErrMissingContentHash = errors.New("hashing: event has no sha256 content hash")
	// ErrContentHashMismatch: hashes.sha256 does not match the event. The
	// spec says to keep using the event in its redacted form.
	ErrContentHashMismatch = errors.New("hashing: content hash does not match")
	// ErrBadEventID: a room version 1-2 event lacks a valid event_id.
	ErrBadEventID = errors.New("hashing: missing or invalid event_id")
	// ErrNotApplicable: the operation does not exist in this room version.
	ErrNotApplicable = errors.New("hashing: not applicable to this room version")
)

var (
	omitForContentHash = []string{"hashes", "signatures", "unsigned"}
	omitForSigning     = []string{"signatures", "unsigned"}
)

// ContentHash returns the sha256 content hash of the event: the hash of its
// canonical JSON without the unsigned, signatures and hashes keys. Errors
// wrap canonicaljson's sentinels.
func ContentHash(event []byte) ([]byte, error) {
	c, err := canonicaljson.Append(make([]byte, 0, len(event)), event, canonicaljson.Options{Omit: omitForContentHash})
	if err != nil {
		return nil, fmt.Errorf("hashing: content hash: %w", err)
	}
	sum := sha256.Sum256(c)
	return sum[:], nil
}

// CheckContentHash compares the event's hashes.sha256 with its content
// hash. Errors wrap [ErrMissingContentHash] or [ErrContentHashMismatch]
// (then use [Redact] to get the form the spec says to keep), or a
// canonicaljson sentinel.
func CheckContentHash(event []byte) error {
	return matchContentHash(event, ContentHash)
}

// MatchContentHash is [CheckContentHash] with the content hash already
// computed (by [SigningFormAndContentHash]); it gives the same errors.
func MatchContentHash(event, contentHash []byte) error {
	return matchContentHash(event, func([]byte) ([]byte, error) { return contentHash, nil })
}

func matchContentHash(event []byte, compute func([]byte) ([]byte, error)) error {
	h := gjson.GetBytes(event, "hashes.sha256")
	if h.Type != gjson.String {
		return ErrMissingContentHash
	}
	want, err := b64.Decode(h.Str)
	if err != nil || len(want) != sha256.Size {
		return fmt.Errorf("%w: hashes.sha256 is not a base64 sha256 hash", ErrContentHashMismatch)
	}
	got, err := compute(event)
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return ErrContentHashMismatch
	}
	return nil
}

// AddContentHash returns the event with hashes.sha256 set to its content
// hash (replacing any earlier value). Other keys are left as they are.
func AddContentHash(event []byte) ([]byte, error) {
	h, err := ContentHash(event)
	if err != nil {
		return nil, err
	}
	out, err := sjson.SetBytes(event, "hashes.sha256", b64.Std(h))
	if err != nil {
		return nil, fmt.Errorf("hashing: setting hashes.sha256: %w", err)
	}
	return out, nil
}

// ReferenceHash returns the event's reference hash: the sha256 of the
// canonical JSON of its redacted form without signatures and unsigned.
func ReferenceHash(rules roomversion.Rules, event []byte) ([]byte, error) {
	red, err := appendRedacted(make([]byte, 0, len(event)), rules, event, true)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(red)
	return sum[:], nil
}

// EventID returns the event's ID in the room version's format: for room
// versions 1-2 the event's own event_id (checked to be $opaque:server);
// otherwise "$" and the reference hash in unpadded standard (version 3) or
// URL-safe (4 and later) base64.
func EventID(rules roomversion.Rules, event []byte) (string, error) {
	switch rules.EventIDFormat {
	case roomversion.EventIDServerGenerated:
		v := gjson.GetBytes(event, "event_id")
		if v.Type != gjson.String {
			return "", fmt.Errorf("%w: no event_id string", ErrBadEventID)
		}
		eid, err := id.ParseEventID(v.Str)
		if err != nil || !eid.IsServerForm() {
			return "", fmt.Errorf("%w: %q is not $opaque:server", ErrBadEventID, v.Str)
		}
		return v.Str, nil
	case roomversion.EventIDBase64, roomversion.EventIDURLSafeBase64:
		h, err := ReferenceHash(rules, event)
		if err != nil {
			return "", err
		}
		if rules.EventIDFormat == roomversion.EventIDBase64 {
			return "$" + b64.Std(h), nil
		}
		return "$" + b64.URL(h), nil
	}
	return "", fmt.Errorf("%w: unknown event ID format %v", ErrNotApplicable, rules.EventIDFormat)
}

// RoomIDFromCreate returns the room ID that a room version 12 create event
// defines: "!" and the URL-safe base64 of its reference hash. For room
// versions without that rule it returns an error wrapping
// [ErrNotApplicable].
func RoomIDFromCreate(rules roomversion.Rules, create []byte) (string, error) {
	if !rules.RoomIDFromCreateEvent {
		return "", fmt.Errorf("%w: room version %s takes room IDs from the creating server", ErrNotApplicable, rules.ID)
	}
	h, err := ReferenceHash(rules, create)
	if err != nil {
		return "", err
	}
	return "!" + b64.URL(h), nil
}
