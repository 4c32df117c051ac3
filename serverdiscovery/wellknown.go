package serverdiscovery

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Cache lifetimes for .well-known results (server-server API, "Resolving
// server names", step 3).
const (
	// DefaultWellKnownCache is used when a successful response carries no
	// usable Cache-Control or Expires header.
	DefaultWellKnownCache = 24 * time.Hour
	// MaxWellKnownCache caps any lifetime a response asks for.
	MaxWellKnownCache = 48 * time.Hour
	// MinFailureCache is the lifetime of the first cached failure; each
	// further consecutive failure doubles it up to MaxFailureCache.
	MinFailureCache = 2 * time.Minute
	// MaxFailureCache caps the lifetime of a cached failure.
	MaxFailureCache = time.Hour
)

// Defaults for the .well-known fetch.
const (
	// DefaultMaxWellKnownBytes bounds the .well-known body.
	DefaultMaxWellKnownBytes = 64 << 10
	// DefaultMaxRedirects bounds the redirects followed for .well-known.
	DefaultMaxRedirects = 5
)

// ParseWellKnown parses a /.well-known/matrix/server body and returns the
// "m.server" value, validated against the server-name grammar (with a port,
// if any, in 1-65535). The body is treated as JSON whatever its content
// type; it must be valid UTF-8 and a JSON object holding exactly one
// "m.server" member whose value is a string. Other members are ignored.
//
// Errors wrap [ErrWellKnownInvalid] (and [ErrInvalidServerName] when the
// value is not a valid server name).
func ParseWellKnown(body []byte) (string, error) {
	if !utf8.Valid(body) {
		return "", fmt.Errorf("%w: body is not UTF-8", ErrWellKnownInvalid)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrWellKnownInvalid, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return "", fmt.Errorf("%w: body is not a JSON object", ErrWellKnownInvalid)
	}
	var server string
	found := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return "", fmt.Errorf("%w: %v", ErrWellKnownInvalid, err)
		}
		key, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return "", fmt.Errorf("%w: %v", ErrWellKnownInvalid, err)
		}
		if key != "m.server" {
			continue
		}
		if found {
			return "", fmt.Errorf("%w: duplicate \"m.server\"", ErrWellKnownInvalid)
		}
		found = true
		var sp *string
		if err := json.Unmarshal(raw, &sp); err != nil || sp == nil {
			return "", fmt.Errorf("%w: \"m.server\" is not a string", ErrWellKnownInvalid)
		}
		server = *sp
	}
	if _, err := dec.Token(); err != nil { // closing '}'
		return "", fmt.Errorf("%w: %v", ErrWellKnownInvalid, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return "", fmt.Errorf("%w: trailing data after object", ErrWellKnownInvalid)
	}
	if !found {
		return "", fmt.Errorf("%w: no \"m.server\"", ErrWellKnownInvalid)
	}
	if _, err := parseServerName(server); err != nil {
		return "", fmt.Errorf("%w: \"m.server\": %w", ErrWellKnownInvalid, err)
	}
	return server, nil
}

// fetchWellKnown fetches and parses https://host/.well-known/matrix/server.
// It returns the delegated name and how long the answer may be cached.
func (r *Resolver) fetchWellKnown(ctx context.Context, host string) (string, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout())
	defer cancel()
	client := r.wellKnownClient()
	u := "https://" + host + "/.well-known/matrix/server"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", 0, fmt.Errorf("%w: %v", ErrWellKnownInvalid, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", 0, err // wraps the redirect sentinels when those are the cause
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return "", 0, fmt.Errorf("%w: status %d", ErrWellKnownInvalid, resp.StatusCode)
	}
	limit := r.MaxWellKnownBytes
	if limit <= 0 {
		limit = DefaultMaxWellKnownBytes
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return "", 0, fmt.Errorf("%w: reading body: %v", ErrWellKnownInvalid, err)
	}
	if int64(len(body)) > limit {
		return "", 0, fmt.Errorf("%w: more than %d bytes", ErrWellKnownTooLarge, limit)
	}
	name, err := ParseWellKnown(body)
	if err != nil {
		return "", 0, err
	}
	return name, cacheLifetime(resp.Header, r.now()), nil
}

// wellKnownClient returns a shallow copy of the configured client with the
// redirect policy enforced.
func (r *Resolver) wellKnownClient() *http.Client {
	var c http.Client
	if r.HTTPClient != nil {
		c = *r.HTTPClient
	} else {
		r.defaultTransportOnce.Do(func() {
			r.defaultTransport = &http.Transport{
				DialContext:         r.DialContext,
				TLSHandshakeTimeout: 10 * time.Second,
				MaxIdleConns:        8,
				IdleConnTimeout:     30 * time.Second,
			}
		})
		c = http.Client{Transport: r.defaultTransport}
	}
	maxRedir := r.MaxRedirects
	if maxRedir <= 0 {
		maxRedir = DefaultMaxRedirects
	}
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Scheme != "https" {
			return fmt.Errorf("%w: redirect to non-https %q", ErrTooManyRedirects, req.URL.Redacted())
		}
		for _, v := range via {
			if v.URL.String() == req.URL.String() {
				return fmt.Errorf("%w: %s", ErrRedirectLoop, req.URL.Redacted())
			}
		}
		if len(via) > maxRedir {
			return fmt.Errorf("%w: more than %d", ErrTooManyRedirects, maxRedir)
		}
		return nil
	}
	return &c
}

// cacheLifetime derives how long a successful .well-known answer is kept:
// Cache-Control max-age (no-store and no-cache mean "do not keep"), else
// Expires (relative to Date, or to now), else the default; capped at
// MaxWellKnownCache.
func cacheLifetime(h http.Header, now time.Time) time.Duration {
	var maxAge time.Duration = -1
	for _, v := range h.Values("Cache-Control") {
		for d := range strings.SplitSeq(v, ",") {
			d = strings.ToLower(strings.TrimSpace(d))
			switch {
			case d == "no-store" || d == "no-cache":
				return 0
			case strings.HasPrefix(d, "max-age="):
				n, err := strconv.ParseInt(strings.Trim(d[len("max-age="):], `"`), 10, 64)
				if err == nil && n >= 0 {
					maxAge = time.Duration(min(n, int64(MaxWellKnownCache/time.Second))) * time.Second
				}
			}
		}
	}
	if maxAge >= 0 {
		return min(maxAge, MaxWellKnownCache)
	}
	if e := h.Get("Expires"); e != "" {
		exp, err := http.ParseTime(e)
		if err != nil {
			return 0 // RFC 9111: an invalid Expires means "already expired"
		}
		base := now
		if d, err := http.ParseTime(h.Get("Date")); err == nil {
			base = d
		}
		return min(max(exp.Sub(base), 0), MaxWellKnownCache)
	}
	return DefaultWellKnownCache
}

// failureLifetime is the back-off for the n-th consecutive failure (n >= 1).
func failureLifetime(n int) time.Duration {
	d := MinFailureCache
	for i := 1; i < n && d < MaxFailureCache; i++ {
		d *= 2
	}
	return min(d, MaxFailureCache)
}
