// Package canonicaljson implements Matrix canonical JSON (the spec's
// appendix "Canonical JSON"): the one byte encoding of a JSON value that
// Matrix signs and hashes.
//
// The canonical form has no insignificant whitespace, object keys sorted by
// Unicode code point at every level, strings in UTF-8 with only the escapes
// the spec requires (\" \\ \b \f \n \r \t, and \u00XX in lower-case hex for
// the other control characters), input escapes decoded, and integers written
// plainly.
//
// [Canonicalize] accepts any JSON text (lenient mode, for room versions 1 to
// 5, which must not reject events for their numbers); [CanonicalizeStrict]
// also enforces the number rules of room versions 6 and later. [Append]
// does either into a caller's buffer and can leave out top-level keys, which
// is what signing and hashing need.
//
// Whatever the mode, the input is validated in one pass, in time linear in
// its length: invalid UTF-8, lone or mis-paired surrogate escapes, duplicate
// keys in one object, nesting deeper than [MaxDepth] and trailing data are
// rejected with a [*SyntaxError] that gives the byte offset and wraps a
// sentinel error. Nothing is repaired silently.
//
// The package has no package-level mutable state and is safe for concurrent
// use.
package canonicaljson
