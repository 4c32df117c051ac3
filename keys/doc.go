// Package keys implements Matrix server signing-key distribution: the
// server-server API sections "Retrieving server keys" (GET
// /_matrix/key/v2/server) and "Querying keys through another server"
// (GET and POST /_matrix/key/v2/query), spec v1.19.
//
//   - [Build] makes our own server keys object (verify_keys,
//     old_verify_keys with expired_ts, valid_until_ts), signed by every
//     current key.
//   - [Parse] parses and verifies one: server_name matches, every key in
//     verify_keys signed it, bounded sizes and counts.
//   - [Fetcher] fetches directly from a server; [Notary] through a trusted
//     key server, in batches, with minimum_valid_until_ts, checking the
//     notary's signature as well as the origin's self-signature.
//   - [Ring] is a validity-aware cache that implements signing.KeyLookup:
//     a key is valid until min(valid_until_ts, fetch time + 7 days), an old
//     key until its expired_ts; a lookup at a time the key was not valid
//     fails with signing.ErrKeyExpired (pass the zero time for room
//     versions that do not enforce key validity). Misses are fetched once
//     however many callers wait, from the sources in order (direct, then
//     notaries).
//   - [Handler] serves both endpoints: our keys, and notary answers from a
//     Ring, countersigned.
//
// # Security
//
// A response is rejected whole, never partly used, when its server_name is
// wrong, a self-signature is missing or bad, a notary signature is missing
// or bad, a count or size bound is exceeded, or it publishes a different
// key under a key ID the ring already holds (key IDs are never reused).
// Direct responses whose valid_until_ts has passed are rejected; notary
// responses may be stale (the spec lets notaries serve the last response of
// an offline server) and their keys are only valid up to their
// valid_until_ts. Fetches of one server are rate-limited (Ring.MinRefetch).
// Every HTTP body read is size-limited and every fetch time-limited.
// old_verify_keys are for events only: [Ring.VerifyKey] returns an old key
// for an event made up to its expired_ts, and [Ring.LookupKey] reports it
// as signing.KeyOld, so that request authentication (package federation)
// refuses it whatever its expired_ts. A key stays old once any verified
// response lists it as old (a choice: a stale notary answer that still
// lists it as current does not bring it back).
//
// Out of scope: persistence of the ring (use Ring.Add to seed it), and
// comparing answers of several notaries.
package keys
