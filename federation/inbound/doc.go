// Package inbound checks what other servers send us: a transaction's
// envelope and size (server-server API, "Transactions": at most 50 PDUs and
// 100 EDUs), and each PDU by the spec's "Checks performed on receipt of a
// PDU", in the spec's order:
//
//  1. the event is valid for its room version's format (event.Parse), else
//     it is dropped;
//  2. it carries the signatures its room version requires
//     (signing.VerifyEvent), else it is dropped;
//  3. its content hash matches, else it is redacted (hashing.Redact) and
//     the redacted form goes on;
//  4. it passes the authorization rules against its own auth events
//     (eventauth.CheckAuthEvents), else it is rejected;
//  5. it passes them against the state before it, else it is rejected;
//  6. it passes them against the room's current state, else it is
//     soft-failed.
//
// [Checker.Verify] runs steps 1-3 on many PDUs at once (signatures on all
// cores through signing.VerifyEvents); [Checker.Authorize] runs steps 4-6
// for one event against a [Room], the caller's storage-agnostic view of
// the room; [Checker.Check] runs all six. Every outcome is a [Result]
// whose Err wraps a sentinel of this package and the underlying error
// (event.ErrBadField, signing.ErrBadSignature, an *eventauth.Error naming
// the rule...).
//
// [CheckEDUOrigin] checks that an EDU speaks only for the origin's users.
// [ServerAllowed] evaluates an m.room.server_acl content for a server
// name, as the spec's "Server Access Control Lists" section says.
//
// # Choices
//
//   - A PDU whose sender is on another server than the transaction's
//     origin is not refused for that alone: resident servers relay other
//     servers' events (a join received through send_join), and step 2
//     already requires the sender's server's signature. Callers that want
//     the stricter rule (the send_join family does) use [CheckOrigin].
//   - An auth event the Room does not know makes the result Undecided with
//     ErrMissingAuthEvents and the missing IDs: fetch them (event_auth,
//     /event), check them, and check the event again.
//   - Which room a PDU belongs to, and so its room version, must be known
//     before step 1; [RoomIDOf] reads the room ID of raw bytes.
//
// # Out of scope
//
// Fetching missing prev events or state (see the spec's
// get_missing_events and state_ids), state resolution (package stateres),
// storing events, EDU semantics, and whether the origin may talk about
// the room at all (callers check that the origin has a member in the
// room and apply the ACL).
package inbound
