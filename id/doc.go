// Package id parses and validates Matrix identifiers: server names, user
// IDs, room IDs, event IDs, room aliases and signing key IDs (the spec's
// appendix "Identifier Grammar").
//
// Every parser checks the grammar and the 255-byte limit and returns an
// error wrapping one of the package's sentinels; a parsed value's String
// method gives back exactly the input. Identifiers are case-sensitive and
// nothing is normalised.
//
// User IDs are accepted under the historical grammar (any code point but
// ':' and NUL in the localpart, as the spec requires of servers for events
// over federation); [UserID.Historical] tells whether only that grammar
// allows the ID, so callers can refuse such IDs where the spec says they
// should (registration, or forwarding outside an event context).
//
// The package does not know room versions: whether an event ID has the
// format of a given room version is checked by package event, using the
// predicates here.
package id
