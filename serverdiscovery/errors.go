package serverdiscovery

import (
	"errors"

	"github.com/gomatrixlib/gomatrixlib/id"
)

// Sentinel errors. Errors returned by this package wrap one of these (and,
// for well-known problems, are reported in [Result.WellKnownErr]).
var (
	// ErrInvalidServerName: the server name (or a delegated m.server value)
	// does not follow the server-name grammar, has a port outside 1-65535,
	// or is a DNS name no resolver can look up. It is id.ErrInvalidServerName,
	// so either name matches with errors.Is.
	ErrInvalidServerName = id.ErrInvalidServerName
	// ErrForbiddenAddress: every address found is private, loopback,
	// link-local, multicast, unspecified or otherwise not routable on the
	// internet, and not in the allow-list.
	ErrForbiddenAddress = errors.New("serverdiscovery: forbidden address")
	// ErrNoAddress: the name has no A or AAAA records.
	ErrNoAddress = errors.New("serverdiscovery: no address for name")
	// ErrServiceUnavailable: the SRV record's target is "." (RFC 2782: the
	// service is decidedly not available at this domain).
	ErrServiceUnavailable = errors.New("serverdiscovery: SRV says service not available")
	// ErrDNS: a DNS query failed (timeout, SERVFAIL, refused, malformed answer).
	ErrDNS = errors.New("serverdiscovery: dns lookup failed")
	// ErrWellKnownInvalid: the .well-known response was not a 200 with a JSON
	// object holding a valid "m.server" string.
	ErrWellKnownInvalid = errors.New("serverdiscovery: invalid .well-known response")
	// ErrWellKnownTooLarge: the .well-known body exceeded the size limit.
	ErrWellKnownTooLarge = errors.New("serverdiscovery: .well-known response too large")
	// ErrRedirectLoop: the .well-known redirects revisit a URL.
	ErrRedirectLoop = errors.New("serverdiscovery: .well-known redirect loop")
	// ErrTooManyRedirects: the .well-known redirects exceed the bound, or
	// leave HTTPS.
	ErrTooManyRedirects = errors.New("serverdiscovery: too many .well-known redirects")
)
