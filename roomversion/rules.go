package roomversion

import (
	"errors"
	"fmt"
)

// ErrUnknown is wrapped by the error [Get] returns for a room version that is
// not in the table.
var ErrUnknown = errors.New("roomversion: unknown room version")

// EventIDFormat says how event IDs are formed in a room version.
type EventIDFormat int

const (
	// EventIDServerGenerated is "$opaque:server", chosen by the sending
	// server (room versions 1 and 2). The event_id is part of the PDU.
	EventIDServerGenerated EventIDFormat = iota + 1
	// EventIDBase64 is "$" + unpadded standard base64 of the reference hash
	// (room version 3).
	EventIDBase64
	// EventIDURLSafeBase64 is "$" + unpadded URL-safe base64 of the
	// reference hash (room versions 4 and later).
	EventIDURLSafeBase64
)

// String names the format.
func (f EventIDFormat) String() string {
	switch f {
	case EventIDServerGenerated:
		return "server-generated"
	case EventIDBase64:
		return "base64"
	case EventIDURLSafeBase64:
		return "url-safe-base64"
	}
	return fmt.Sprintf("EventIDFormat(%d)", int(f))
}

// StateResAlgorithm names a state resolution algorithm.
type StateResAlgorithm int

const (
	// StateResV1 is the original algorithm (room version 1).
	StateResV1 StateResAlgorithm = iota + 1
	// StateResV2 is state resolution v2 (room versions 2 to 11).
	StateResV2
	// StateResV2_1 is state resolution v2.1 (room version 12): iterative
	// auth checks start from an empty state and the conflicted state
	// subgraph joins the full conflicted set.
	StateResV2_1
)

// String names the algorithm ("v1", "v2", "v2.1").
func (a StateResAlgorithm) String() string {
	switch a {
	case StateResV1:
		return "v1"
	case StateResV2:
		return "v2"
	case StateResV2_1:
		return "v2.1"
	}
	return fmt.Sprintf("StateResAlgorithm(%d)", int(a))
}

// Rules is one row of the table: everything that a room version decides.
// The zero value is not a valid room version; get rows from [Get].
type Rules struct {
	// ID is the room version identifier, for example "10".
	ID string
	// Stable reports whether the spec lists the version as stable.
	Stable bool

	// EventIDFormat is how event IDs are formed. Server-generated in 1-2,
	// standard base64 of the reference hash in 3, URL-safe base64 from 4.
	EventIDFormat EventIDFormat
	// EventReferencesWithHashes: prev_events and auth_events are lists of
	// [event_id, {"sha256": hash}] pairs, and the PDU carries its own
	// event_id (room versions 1-2). From 3 they are plain lists of IDs.
	EventReferencesWithHashes bool
	// SignedByEventIDServer: the server named in the event ID must have
	// signed the event too, when it differs from the sender's (1-2).
	SignedByEventIDServer bool
	// StateResolution is the state resolution algorithm: v1 in 1, v2 from 2,
	// v2.1 from 12.
	StateResolution StateResAlgorithm
	// EnforceKeyValidity: a signing key's valid_until_ts (capped at fetch
	// time + 7 days) must not be before the event's origin_server_ts.
	// Since room version 5; earlier versions ignore valid_until_ts.
	EnforceKeyValidity bool
	// StrictCanonicalJSON: events must be canonical JSON in the strict
	// sense: integers only, in [-(2^53)+1, 2^53-1]; no floats, exponents
	// or NaN. Since room version 6.
	StrictCanonicalJSON bool
	// MaxDepth is the largest depth a PDU may have: 2^63-1 in 1-5,
	// 2^53-1 from 6 (the canonical JSON integer range).
	MaxDepth int64

	// SpecialCaseAliases: m.room.aliases has its own auth rule (state_key
	// must be the sender's server) and is exempt from power levels
	// (room versions 1-5). From 6 it is an ordinary state event.
	SpecialCaseAliases bool
	// RedactionAuthRule: redactions are authorised by an auth rule of their
	// own (the redact level, or the same server as the target's event ID),
	// room versions 1-2. From 3 redaction checks happen outside the auth
	// rules, when the redaction is applied.
	RedactionAuthRule bool
	// NotificationsPowerLevels: the power levels "notifications" object is
	// covered by the power level change checks. Since room version 6.
	NotificationsPowerLevels bool
	// Knocking: the "knock" membership and join rule. Since room version 7.
	Knocking bool
	// RestrictedJoins: the "restricted" join rule and
	// join_authorised_via_users_server. Since room version 8.
	RestrictedJoins bool
	// KnockRestricted: the "knock_restricted" join rule. Since room
	// version 10.
	KnockRestricted bool
	// IntegerPowerLevels: power level values must be integers; strings like
	// "50" are rejected by the auth rules. Since room version 10. Before it,
	// integer strings are accepted (and floats too while
	// StrictCanonicalJSON is off, truncated toward zero).
	IntegerPowerLevels bool
	// CreatorFromSender: the room creator is the create event's sender and
	// content.creator is not required. Since room version 11 (before it,
	// the creator is content.creator, which is required).
	CreatorFromSender bool
	// RedactsInContent: a redaction names its target in content.redacts
	// rather than a top-level "redacts" key. Since room version 11.
	RedactsInContent bool
	// RoomIDFromCreateEvent: the create event carries no room_id; the room
	// ID is "!" plus the create event's reference hash (the event ID with
	// "!" for "$"), and the room ID has no server part. Since room
	// version 12.
	RoomIDFromCreateEvent bool
	// CreateEventInAuthEvents: every non-create event cites the create
	// event in auth_events (room versions 1-11); from 12 it must not.
	CreateEventInAuthEvents bool
	// PrivilegedCreators: the create event's sender and
	// content.additional_creators have infinite power level, and may not
	// appear in power levels' users. Since room version 12.
	PrivilegedCreators bool
	// ExplicitTombstonePowerLevel: servers creating a room must set
	// events["m.room.tombstone"] above state_default in the initial power
	// levels (room version 12 room creation advice).
	ExplicitTombstonePowerLevel bool

	// Redaction holds the redaction algorithm's keep-lists.
	Redaction Redaction
}

// String returns the room version identifier.
func (r Rules) String() string { return r.ID }

// Get returns the rules of room version id. For a version that is not in the
// table it returns an error wrapping [ErrUnknown].
func Get(id string) (Rules, error) {
	for i := range table {
		if table[i].ID == id {
			return table[i], nil
		}
	}
	if len(id) > 64 {
		id = id[:64] + "..."
	}
	return Rules{}, fmt.Errorf("%w %q", ErrUnknown, id)
}

// Stable returns the identifiers of all stable room versions, oldest first.
func Stable() []string {
	out := make([]string, 0, len(table))
	for i := range table {
		if table[i].Stable {
			out = append(out, table[i].ID)
		}
	}
	return out
}

// All returns the rules of every room version in the table, oldest first.
func All() []Rules {
	out := make([]Rules, len(table))
	copy(out, table)
	return out
}

// Default is the room version the spec recommends for new rooms.
const Default = "12"

// Shared returns r as a pointer that events parsed with the same rules can
// share: the table's own copy when r is a known room version's rules
// unchanged, otherwise a new copy of r. Callers must not modify the result.
// Keeping one copy per room version keeps it in the CPU's cache when many
// events read their rules.
func Shared(r Rules) *Rules {
	for i := range table {
		if t := &table[i]; t.ID == r.ID && sameRules(t, &r) {
			return t
		}
	}
	return &r
}

// sameRules reports whether a and b are equal field by field, the
// redaction keep-lists compared entry by entry.
func sameRules(a, b *Rules) bool {
	return a.ID == b.ID && a.Stable == b.Stable &&
		a.EventIDFormat == b.EventIDFormat &&
		a.EventReferencesWithHashes == b.EventReferencesWithHashes &&
		a.SignedByEventIDServer == b.SignedByEventIDServer &&
		a.StateResolution == b.StateResolution &&
		a.EnforceKeyValidity == b.EnforceKeyValidity &&
		a.StrictCanonicalJSON == b.StrictCanonicalJSON &&
		a.MaxDepth == b.MaxDepth &&
		a.SpecialCaseAliases == b.SpecialCaseAliases &&
		a.RedactionAuthRule == b.RedactionAuthRule &&
		a.NotificationsPowerLevels == b.NotificationsPowerLevels &&
		a.Knocking == b.Knocking &&
		a.RestrictedJoins == b.RestrictedJoins &&
		a.KnockRestricted == b.KnockRestricted &&
		a.IntegerPowerLevels == b.IntegerPowerLevels &&
		a.CreatorFromSender == b.CreatorFromSender &&
		a.RedactsInContent == b.RedactsInContent &&
		a.RoomIDFromCreateEvent == b.RoomIDFromCreateEvent &&
		a.CreateEventInAuthEvents == b.CreateEventInAuthEvents &&
		a.PrivilegedCreators == b.PrivilegedCreators &&
		a.ExplicitTombstonePowerLevel == b.ExplicitTombstonePowerLevel &&
		a.Redaction.equal(b.Redaction)
}
