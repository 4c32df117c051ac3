// Package event parses and builds Matrix PDUs (persistent data units) for
// every room version: the server-server API's PDU format, the room version
// specifications' event formats, and the client-server API's size limits.
//
// [Parse] validates the PDU format of the room version (size, required
// fields and their types, the shape of prev_events and auth_events, the
// identifier grammars, depth range, strict canonical JSON numbers where the
// version demands them, duplicate keys) and extracts the fields every layer
// needs once. A [PDU] is immutable and safe for concurrent use. Content is
// read through typed views ([PDU.CreateContent], [PDU.MemberContent],
// [PDU.PowerLevels], [PDU.JoinRules], [PDU.ThirdPartyInvite],
// [PDU.HistoryVisibility]), parsed on demand.
//
// Parse does not check signatures, hashes or authorization: that is
// signing.VerifyEvent's and package eventauth's work.
//
// [Builder] makes new events: it fills in the hashes, the event ID (or, for
// a room version 12 create event, leaves out the room ID that the event
// defines) and the signature, and its output passes Parse.
package event
