// Package membership implements both sides of the server-server API's
// membership handshakes: "Joining Rooms" (make_join, send_join v1/v2),
// "Leaving Rooms" (make_leave, send_leave), "Knocking" (make_knock,
// send_knock) and "Inviting to a room" (invite v2).
//
// Resident side (the server in the room):
//   - [CheckMakeRequest] checks a make_join/make_leave/make_knock request:
//     the user is on the requesting server, and for make_join/make_knock
//     the room's version is in the requester's ver list (else 400
//     M_INCOMPATIBLE_ROOM_VERSION with room_version).
//   - [BuildTemplate] builds the unsigned event template from the room's
//     forward extremities and current state, after checking that the
//     authorization rules allow it (else 403 M_FORBIDDEN).
//   - [CheckSignRequest] checks an event a server asks us to accept and
//     sign (send_join, send_leave, send_knock): event ID as in the path,
//     m.room.member, sender on the origin, state_key = sender, the room,
//     the membership, signatures and content hash. [CheckInvite] does the
//     same for an invite v2 to one of our users, and
//     [CheckInviteRoomState] checks invite_room_state. [Countersign] adds
//     our signature.
//
// Joining side:
//   - [ParseMakeResponse] reads a make_* answer and its room version;
//     [BuildEvent] checks the template (type, room, sender, state_key,
//     membership) and builds and signs our event from it.
//   - [CheckSendJoinResponse] checks a send_join answer: every event of
//     state and auth_chain for format, signatures and hashes (redacting
//     on a hash mismatch), the room, one create event of the expected
//     room version, every event against its auth events in dependency
//     order, no duplicate state entries, and our join against the
//     returned state; it returns the checked state.
//   - [CheckInviteResponse] checks what an invitee's server returns from
//     invite v2: our event, unchanged, signed by its server too.
//   - [PerformKnock] knocks (make_knock, build, send_knock, and a
//     knock_room_state holding the create event).
//   - [PerformJoin] and [PerformLeave] run the joining side's handshake
//     over a [Client] (*federation.Client): make_*, build and sign, send_*
//     v2, check the answer, trying residents in order.
//
// Every refusal is an [*Error] carrying the HTTP status and Matrix
// errcode to answer with, and wraps a sentinel of this package (and the
// underlying error) for errors.Is.
//
// # Out of scope
//
// Choosing the servers to try (PerformJoin takes them in order), the v1
// fallback of send_join/send_leave, fetching auth events the answer lacks
// (they count as missing: the events needing them are dropped), deciding
// restricted-join conditions (the caller passes
// join_authorised_via_users_server in the template content), storing and
// sending events, and the v1 response envelopes ([200, {...}]: pass the
// object).
package membership
