// Package hashing computes the hashes Matrix puts on events and derives from
// them (server-server API, "Signing Events"; room versions, "Event IDs" and
// "Redactions"): the content hash, the reference hash, event IDs in the
// three formats, the room ID of a room version 12 create event, and the
// redaction algorithm of every room version.
//
// Every difference between room versions comes from the
// [roomversion.Rules] passed in: the event ID format and the redaction
// keep-lists. Inputs are raw event JSON; outputs that are JSON are in
// canonical form. This package checks only what it needs to compute its
// result: full PDU validation is package event's job.
//
// A content hash that does not match is not a reason to drop an event: the
// spec says to use its redacted form instead. [CheckContentHash] reports the
// mismatch with [ErrContentHashMismatch] and [Redact] gives that form.
package hashing
