// Package federation implements the server-server API's request
// authentication and a client for it (server-server API, "Authentication"
// and the endpoints a homeserver calls).
//
// [SignRequest] produces the X-Matrix Authorization header over the JSON
// the spec defines (method, uri, origin, destination, content);
// [ParseAuthorization] reads one tolerantly, as the spec asks receivers to;
// [VerifyRequest] checks it against keys from a [signing.KeyLookup] (such
// as keys.Ring). [Authenticator] is the server side: an http.Handler
// middleware that authenticates every request, bounds header and body
// sizes and read time, rejects with the spec's error JSON, and passes the
// verified origin in the request context.
//
// [Client] dials the addresses serverdiscovery gives (through
// serverdiscovery.Transport, with the right Host header and TLS name),
// signs each request and has typed methods for the federation API; Matrix
// errors come back as [*Error]. [Backoff] keeps per-destination retry
// state so that a failing server is not hammered.
//
// Security: a request is processed only after its signature verified; the
// destination must be us when given; request signatures are checked with
// keys valid now, and never with old keys (old_verify_keys), whatever
// their expired_ts, when the lookup says which keys are old
// ([signing.KeyStatusLookup], as keys.Ring does). Choices: when a request
// carries several X-Matrix headers, every one made with a known current
// key must verify, not just one (the rule events follow); and the
// middleware checks the body with the canonicaljson parser before any
// signature work, so a body with invalid UTF-8 or duplicate keys gets 400
// M_NOT_JSON rather than 401.
package federation
