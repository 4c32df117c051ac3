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
// A failed content hash is not a failed signature: [VerifyEvent] returns
// an error wrapping hashing.ErrContentHashMismatch only after the
// signatures have verified, and the spec says to keep such an event in its
// redacted form ([hashing.Redact]) rather than drop it.
//
// Verification uses crypto/ed25519 for every signature, so our verdicts are
// those of Go's standard library. Batch verification (a random linear
// combination over edwards25519) is knowingly not used: its cofactored
// equation accepts some crafted signatures that the cofactorless check of
// other homeservers rejects, and a disagreement there splits rooms.
package signing
