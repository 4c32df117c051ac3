// Package signing implements Matrix signing (appendices, "Signing JSON";
// server-server API, "Signing Events" and "Validating hashes and
// signatures"): ed25519 signing keys and their key file form, unpadded
// base64, signing and verifying JSON objects, and signing and verifying
// events of every room version.
//
// Event verification knows which servers must have signed an event for its
// room version ([RequiredSigners]) and asks for their keys through
// [KeyLookup], passing the event's origin_server_ts when the room version
// enforces key validity (5 and later). [VerifyEvents] checks many events at
// once on all cores.
//
// Every signature of a required server made with a key the lookup returns
// must verify, not just one of them: a server that also signed with a
// second known key whose signature is bad fails the event, as the spec's
// "Validating hashes and signatures" and Synapse's key ring have it.
// Signatures under unknown algorithms or key IDs, and under keys not valid
// at the event's time, are ignored. Old keys (old_verify_keys) verify
// events up to their expired_ts; a [KeyStatusLookup] also tells them from
// current keys, which request authentication needs.
//
// A failed content hash is not a failed signature: [VerifyEvent] returns
// an error wrapping hashing.ErrContentHashMismatch only after the
// signatures have verified, and the spec says to keep such an event in its
// redacted form ([hashing.Redact]) rather than drop it.
//
// By default verification uses crypto/ed25519 for every signature, so our
// verdicts are those of Go's standard library. [VerifyEventsWithOptions]
// with [VerifyOptions].Batch checks signatures together with a random
// linear combination over edwards25519 (internal/ed25519batch): the
// signatures take about 0.3 of the CPU of one-by-one checks, whole events
// about 0.4. Its cofactored equation accepts one kind of signature
// that the cofactorless check of Go, libsodium and so other homeservers
// rejects: one whose R carries a small-order component, which only the
// key's holder can produce. A server that decides which events exist in a
// room must not disagree with the others there, so Batch is opt-in.
package signing
