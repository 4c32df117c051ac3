// Package eventauth implements the Matrix authorization rules: whether an
// event is allowed given a room state, for every room version from 1 to 12;
// which state events an event must cite as auth_events; and who may see an
// event under the room's history visibility.
//
// Spec: the "Authorization rules" section of each room version page
// (https://spec.matrix.org/v1.16/rooms/v1/ to .../rooms/v12/), the
// server-server API's "Checks performed on receipt of a PDU" and "Auth
// events selection", and the client-server API's "Room History Visibility"
// module (server behaviour).
//
// # Checking events
//
// [Check] decides an event against a [State]: the state before the event,
// the room's current state (for soft failure), or anything else the caller
// chooses. [CheckAuthEvents] decides it against the events it cites,
// applying the auth events rules (no duplicate (type, state_key), nothing
// the selection algorithm would not pick, no rejected entry, the create
// event present in versions 1-11 and absent in 12, the same room) first.
// Every difference between room versions comes from
// [github.com/gomatrixlib/gomatrixlib/roomversion.Rules] fields: aliases
// (1-5), the redaction rule (1-2), notifications power levels (6),
// knocking (7), restricted joins (8), knock_restricted and integer-only
// power levels (10), the creator from the sender (11), and room IDs from
// the create event with privileged creators (12). Room version 9 changes
// only redaction, so its rules are version 8's.
//
// A rejection is an [*Error] whose Rule is the spec's number of the
// rejecting rule in that room version (rule "4.3.7" in version 10 is
// "5.3.7" in 12 and "5.2.6" in 1), with a Reason for humans. It matches
// [ErrRejected] and its rule family's sentinel ([ErrJoin], [ErrPowerLevels],
// ...) with errors.Is. [CheckWithOptions] and [CheckAuthEvents] also return
// the number of the rule that allowed an event.
//
// # Choices where the spec is silent
//
//   - A room without an m.room.join_rules event has the join rule "invite".
//   - Before room version 10 the spec only requires power level users to be
//     integers (or integer strings); a scalar, events or notifications value
//     that cannot be read as a level is rejected under that same rule,
//     rather than guessed. Before version 6 floats are truncated toward
//     zero.
//   - The "validly signed by the authorising server" rule (8 and later) is
//     met by a signature entry for that server unless
//     [Options].VerifyServerSignature is set; events must have had their
//     signatures verified on receipt.
//   - Checking against a state without a create event rejects under the
//     "no create event" rule (2.4; rule 2 in version 12).
//
// # Out of scope
//
// Signature and hash checks of the event itself (package signing), event
// format validation (package event), whether an accepted redaction is
// applied (room versions 3 and later check the redact level or the
// sender's server when applying it), and state resolution (package
// stateres).
//
// # Security notes
//
// The rules trust the state they are given: pass only accepted events.
// Third-party invite signatures are verified with the public keys of the
// room's m.room.third_party_invite event, at most 16 keys and 16
// signatures per invite. No function panics on an event that passed
// event.Parse, whatever the state (fuzzed); a state event whose content
// cannot be read yields an error wrapping [ErrBadState], not a verdict.
package eventauth
