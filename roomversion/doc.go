// Package roomversion is the one table of per-room-version behaviour for
// Matrix room versions 1 to 12.
//
// Every behaviour that differs between room versions is a named field of
// [Rules], documented with the room version that introduced it. Other
// packages receive a Rules value and read its fields; they never compare
// room version strings. Adding a room version means adding one row (the
// previous row plus an explicit diff) and the code for any new switch.
//
// Spec: "Room Versions" (https://spec.matrix.org/latest/rooms/) and the
// per-version pages it links to, as of spec v1.16 (room version 12).
//
// Unknown versions are an error wrapping [ErrUnknown], never a guess.
// The table is read-only: [Get] returns a copy of a row, and the redaction
// keep-lists are only reachable through methods that return fresh slices.
package roomversion
