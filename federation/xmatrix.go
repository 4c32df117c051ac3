package federation

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gomatrixlib/gomatrixlib/canonicaljson"
	"github.com/gomatrixlib/gomatrixlib/id"
	"github.com/gomatrixlib/gomatrixlib/signing"
)

// MaxAuthorizationBytes bounds an Authorization header we parse.
const MaxAuthorizationBytes = 8 << 10

// Sentinel errors of request authentication.
var (
	// ErrNoAuthorization: no X-Matrix Authorization header.
	ErrNoAuthorization = errors.New("federation: missing X-Matrix authorization")
	// ErrMalformedAuthorization: the header cannot be parsed or lacks a
	// parameter.
	ErrMalformedAuthorization = errors.New("federation: malformed X-Matrix authorization")
	// ErrWrongDestination: the request names another server as destination.
	ErrWrongDestination = errors.New("federation: request is for another destination")
	// ErrBadRequestSignature: the signature does not verify.
	ErrBadRequestSignature = errors.New("federation: request signature does not verify")
	// ErrUnknownOriginKey: the origin's key could not be found.
	ErrUnknownOriginKey = errors.New("federation: origin key not found")
	// ErrOldOriginKey: the key is one of the origin's old keys
	// (old_verify_keys), which never authenticate requests.
	ErrOldOriginKey = errors.New("federation: request signed with an old key")
)

// Authorization holds the parameters of one X-Matrix header.
type Authorization struct {
	Origin      string
	Destination string // empty when the sender left it out
	KeyID       string
	Sig         string
}

// RequestSigningInput returns the canonical JSON that an X-Matrix
// signature covers: {"content":...,"destination":...,"method":...,
// "origin":...,"uri":...}, where content is present only when the request
// has a body (which must then be JSON).
func RequestSigningInput(method, uri, origin, destination string, content []byte) ([]byte, error) {
	b := make([]byte, 0, len(content)+len(uri)+len(origin)+len(destination)+80)
	b = append(b, '{')
	if len(content) > 0 {
		b = append(b, `"content":`...)
		b = append(b, content...)
		b = append(b, ',')
	}
	b = appendField(b, "destination", destination, true)
	b = appendField(b, "method", method, true)
	b = appendField(b, "origin", origin, true)
	b = appendField(b, "uri", uri, false)
	b = append(b, '}')
	out, err := canonicaljson.Append(make([]byte, 0, len(b)), b, canonicaljson.Options{})
	if err != nil {
		return nil, fmt.Errorf("federation: request body: %w", err)
	}
	return out, nil
}

func appendField(b []byte, name, value string, comma bool) []byte {
	b = append(b, '"')
	b = append(b, name...)
	b = append(b, `":`...)
	b = appendJSONString(b, value)
	if comma {
		b = append(b, ',')
	}
	return b
}

// appendJSONString appends s as a JSON string (the canonicalizer that runs
// afterwards normalises escapes).
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// SignRequest returns the value of the Authorization header for a request
// from origin to destination: X-Matrix origin="...",destination="...",
// key="...",sig="...". uri is the request target (path and query).
func SignRequest(origin, destination, keyID string, key ed25519.PrivateKey, method, uri string, content []byte) (string, error) {
	if len(key) != ed25519.PrivateKeySize {
		return "", fmt.Errorf("%w: private key of %d bytes", signing.ErrBadKey, len(key))
	}
	input, err := RequestSigningInput(method, uri, origin, destination, content)
	if err != nil {
		return "", err
	}
	sig := signing.EncodeBase64(ed25519.Sign(key, input))
	var b strings.Builder
	b.Grow(64 + len(origin) + len(destination) + len(keyID) + len(sig))
	b.WriteString(`X-Matrix origin="`)
	writeQuoted(&b, origin)
	b.WriteString(`",destination="`)
	writeQuoted(&b, destination)
	b.WriteString(`",key="`)
	writeQuoted(&b, keyID)
	b.WriteString(`",sig="`)
	b.WriteString(sig)
	b.WriteString(`"`)
	return b.String(), nil
}

func writeQuoted(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
}

// ParseAuthorization parses one Authorization header value with the
// X-Matrix scheme, tolerantly: the scheme in any case, parameters in any
// order and case, spaces and tabs around commas and '=', empty list
// elements, quoted values with backslash escapes, bare values (with ':'
// accepted for key IDs), unknown parameters ignored. Errors wrap
// [ErrNoAuthorization] or [ErrMalformedAuthorization].
func ParseAuthorization(header string) (Authorization, error) {
	var a Authorization
	if len(header) > MaxAuthorizationBytes {
		return a, fmt.Errorf("%w: header of %d bytes", ErrMalformedAuthorization, len(header))
	}
	scheme, rest, _ := strings.Cut(strings.TrimLeft(header, " \t"), " ")
	if !strings.EqualFold(scheme, "X-Matrix") {
		return a, ErrNoAuthorization
	}
	s := rest
	seen := map[string]bool{}
	for {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			break
		}
		// Name.
		i := 0
		for i < len(s) && isTchar(s[i]) {
			i++
		}
		if i == 0 {
			return a, fmt.Errorf("%w: expected a parameter name at %q", ErrMalformedAuthorization, clip(s))
		}
		name := strings.ToLower(s[:i])
		s = strings.TrimLeft(s[i:], " \t")
		if s == "" || s[0] != '=' {
			return a, fmt.Errorf("%w: parameter %q has no value", ErrMalformedAuthorization, name)
		}
		s = strings.TrimLeft(s[1:], " \t")
		var value string
		if strings.HasPrefix(s, `"`) {
			var v strings.Builder
			j := 1
			closed := false
			for j < len(s) {
				c := s[j]
				if c == '\\' && j+1 < len(s) {
					v.WriteByte(s[j+1])
					j += 2
					continue
				}
				if c == '"' {
					closed = true
					j++
					break
				}
				v.WriteByte(c)
				j++
			}
			if !closed {
				return a, fmt.Errorf("%w: unterminated quoted value of %q", ErrMalformedAuthorization, name)
			}
			value, s = v.String(), s[j:]
		} else {
			j := 0
			for j < len(s) && (isTchar(s[j]) || s[j] == ':') {
				j++
			}
			value, s = s[:j], s[j:]
		}
		s = strings.TrimLeft(s, " \t")
		if s != "" && s[0] != ',' {
			return a, fmt.Errorf("%w: junk after parameter %q", ErrMalformedAuthorization, name)
		}
		if seen[name] {
			return a, fmt.Errorf("%w: parameter %q given twice", ErrMalformedAuthorization, name)
		}
		seen[name] = true
		switch name {
		case "origin":
			a.Origin = value
		case "destination":
			a.Destination = value
		case "key":
			a.KeyID = value
		case "sig":
			a.Sig = value
		}
	}
	if a.Origin == "" || a.KeyID == "" || a.Sig == "" {
		return a, fmt.Errorf("%w: origin, key and sig are required", ErrMalformedAuthorization)
	}
	if _, err := id.ParseServerName(a.Origin); err != nil {
		return a, fmt.Errorf("%w: origin: %w", ErrMalformedAuthorization, err)
	}
	if _, err := id.ParseKeyID(a.KeyID); err != nil {
		return a, fmt.Errorf("%w: key: %w", ErrMalformedAuthorization, err)
	}
	return a, nil
}

func clip(s string) string {
	if len(s) > 32 {
		return s[:32] + "..."
	}
	return s
}

// isTchar reports whether c is an RFC 9110 token character.
func isTchar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// VerifyRequest checks the X-Matrix authorization of a request received by
// ourName and returns the verified origin. headers are the request's
// Authorization header values (a sender may send one per key), uri the
// request target, content the body (nil if none). Keys must be valid at
// now and current: when keys is a [signing.KeyStatusLookup] (keys.Ring
// is), a key it reports as old fails with [ErrOldOriginKey]; a plain
// [signing.KeyLookup] is trusted to return current keys only. At least one
// header must verify, and every header whose key keys returns as valid and
// current must verify too; headers that cannot be parsed, name another
// destination, or use keys that are unknown, not valid at now or old are
// skipped. Errors wrap the package's sentinels.
func VerifyRequest(ctx context.Context, keys signing.KeyLookup, ourName string, now time.Time, method, uri string, headers []string, content []byte) (string, error) {
	var firstErr error
	tried := false
	origin := ""
	for _, h := range headers {
		a, err := ParseAuthorization(h)
		if errors.Is(err, ErrNoAuthorization) {
			continue
		}
		tried = true
		if err == nil {
			err = verifyOne(ctx, keys, ourName, now, method, uri, a, content)
		}
		if errors.Is(err, ErrBadRequestSignature) {
			return "", err
		}
		if err == nil {
			if origin == "" {
				origin = a.Origin
			}
			continue
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if origin != "" {
		return origin, nil
	}
	if !tried {
		return "", ErrNoAuthorization
	}
	return "", firstErr
}

func verifyOne(ctx context.Context, keys signing.KeyLookup, ourName string, now time.Time, method, uri string, a Authorization, content []byte) error {
	if a.Destination != "" && a.Destination != ourName {
		return fmt.Errorf("%w: %q", ErrWrongDestination, a.Destination)
	}
	dest := a.Destination
	if dest == "" {
		dest = ourName
	}
	var pub ed25519.PublicKey
	var err error
	if sl, ok := keys.(signing.KeyStatusLookup); ok {
		var status signing.KeyStatus
		pub, status, err = sl.LookupKey(ctx, a.Origin, a.KeyID, now)
		if err == nil && status != signing.KeyCurrent {
			return fmt.Errorf("%w: %s %s is %s", ErrOldOriginKey, a.Origin, a.KeyID, status)
		}
	} else {
		pub, err = keys.VerifyKey(ctx, a.Origin, a.KeyID, now)
	}
	if err != nil {
		return fmt.Errorf("%w: %s %s: %w", ErrUnknownOriginKey, a.Origin, a.KeyID, err)
	}
	input, err := RequestSigningInput(method, uri, a.Origin, dest, content)
	if err != nil {
		return err
	}
	sig, err := signing.DecodeBase64(a.Sig)
	if err != nil || len(sig) != ed25519.SignatureSize || len(pub) != ed25519.PublicKeySize || !ed25519.Verify(pub, input, sig) {
		return fmt.Errorf("%w: from %s with %s", ErrBadRequestSignature, a.Origin, a.KeyID)
	}
	return nil
}
