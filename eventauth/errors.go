package eventauth

import (
	"errors"

	"github.com/gomatrixlib/gomatrixlib/roomversion"
)

// Sentinels for the rule families. Every rejection is an [*Error] that
// matches [ErrRejected] and exactly one family sentinel with errors.Is.
var (
	// ErrRejected matches every rejection by the authorization rules.
	ErrRejected = errors.New("eventauth: event rejected")

	// ErrCreate: the m.room.create rules (rule 1).
	ErrCreate = errors.New("eventauth: create event rules")
	// ErrRoomID: the room ID is not derived from an accepted create event
	// (room version 12, rule 2).
	ErrRoomID = errors.New("eventauth: room ID does not match the create event")
	// ErrAuthEvents: the event's auth_events are wrong (duplicates,
	// irrelevant entries, rejected entries, no create event, other room).
	ErrAuthEvents = errors.New("eventauth: auth events rules")
	// ErrFederate: the room is not federated (m.federate is false) and the
	// sender is on another server than the room creator.
	ErrFederate = errors.New("eventauth: room does not federate")
	// ErrAliases: the m.room.aliases special case (room versions 1-5).
	ErrAliases = errors.New("eventauth: aliases rules")
	// ErrMembership: a member event without a state_key or membership, or
	// with an unknown membership.
	ErrMembership = errors.New("eventauth: membership rules")
	// ErrAuthorisedVia: a member event names a
	// join_authorised_via_users_server whose server did not sign it.
	ErrAuthorisedVia = errors.New("eventauth: join_authorised_via_users_server rules")
	// ErrJoin: the join rules.
	ErrJoin = errors.New("eventauth: join rules")
	// ErrInvite: the invite rules.
	ErrInvite = errors.New("eventauth: invite rules")
	// ErrThirdPartyInvite: an invite carrying a third_party_invite failed
	// its token, mxid or signature checks.
	ErrThirdPartyInvite = errors.New("eventauth: third-party invite rules")
	// ErrLeave: the leave (and kick, unban) rules.
	ErrLeave = errors.New("eventauth: leave rules")
	// ErrBan: the ban rules.
	ErrBan = errors.New("eventauth: ban rules")
	// ErrKnock: the knock rules (room version 7 and later).
	ErrKnock = errors.New("eventauth: knock rules")
	// ErrNotJoined: the sender is not joined to the room.
	ErrNotJoined = errors.New("eventauth: sender not joined")
	// ErrThirdPartyInviteLevel: the sender of an m.room.third_party_invite
	// event lacks the invite level.
	ErrThirdPartyInviteLevel = errors.New("eventauth: third-party invite event needs the invite level")
	// ErrPowerLevel: the sender's power level is below the level required
	// for the event type.
	ErrPowerLevel = errors.New("eventauth: insufficient power level")
	// ErrStateKey: a state key starting with "@" that is not the sender.
	ErrStateKey = errors.New("eventauth: state key belongs to another user")
	// ErrPowerLevels: an m.room.power_levels event that is malformed or
	// changes levels the sender may not change.
	ErrPowerLevels = errors.New("eventauth: power levels rules")
	// ErrRedaction: the redaction rule of room versions 1 and 2.
	ErrRedaction = errors.New("eventauth: redaction rules")
)

// ErrMissingAuthEvent is returned (not as an [*Error]) when an event lists
// an auth event that the caller did not supply, or when the caller supplies
// an event that the event does not list. It says nothing about the event's
// validity: fetch the missing events and check again.
var ErrMissingAuthEvent = errors.New("eventauth: auth event not supplied")

// Error is a rejection by the authorization rules. Rule is the number of
// the rule that rejected the event in the spec's list for the room version
// (for example "4.3.7" in room version 10 is "join rule not satisfied"; the
// same rule is "5.2.6" in room version 1). Reason says why in plain words.
//
// An *Error matches [ErrRejected] and the sentinel of its rule family with
// errors.Is, and matches a target *Error whose Rule (and RoomVersion, if
// set) equal its own.
type Error struct {
	// RoomVersion is the room version whose rule numbering Rule uses.
	RoomVersion string
	// Rule is the rule's number in the spec's authorization rules for the
	// room version, such as "4.3.1".
	Rule string
	// Reason explains the rejection.
	Reason string

	kind error
}

// Error implements error.
func (e *Error) Error() string {
	return "eventauth: rule " + e.Rule + " (room version " + e.RoomVersion + "): " + e.Reason
}

// Unwrap returns the rule family's sentinel and [ErrRejected].
func (e *Error) Unwrap() []error {
	if e.kind == nil {
		return []error{ErrRejected}
	}
	return []error{e.kind, ErrRejected}
}

// Is reports whether target is an *Error with the same Rule (and the same
// RoomVersion when target sets one).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	return t.Rule == e.Rule && (t.RoomVersion == "" || t.RoomVersion == e.RoomVersion)
}

// reject builds the *Error for rule r in room version v.
func reject(v *roomversion.Rules, r rule, reason string) *Error {
	code, kind, ok := ruleCode(v, r)
	if !ok {
		// A rule applied in a version where it does not exist is a bug in
		// this package; say so rather than inventing a number.
		code = "?"
	}
	return &Error{RoomVersion: v.ID, Rule: code, Reason: reason, kind: kind}
}

// ErrBadState is wrapped (not as an [*Error]) when an event of the state
// the check relies on cannot be read, such as a power levels event in the
// state whose content is malformed. The event under check is neither
// accepted nor rejected: the state is at fault.
var ErrBadState = errors.New("eventauth: unreadable state event")
