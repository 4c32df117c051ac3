package federation

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/gomatrixlib/gomatrixlib/canonicaljson"
	"github.com/gomatrixlib/gomatrixlib/signing"
)

// Defaults of [Authenticator].
const (
	DefaultMaxBodyBytes = 4 << 20
	DefaultReadTimeout  = 30 * time.Second
)

type originKey struct{}

// OriginFromContext returns the verified origin server name that
// [Authenticator] stored in the request context.
func OriginFromContext(ctx context.Context) (string, bool) {
	o, ok := ctx.Value(originKey{}).(string)
	return o, ok
}

// Authenticator is middleware for the federation API. Set the fields, then
// use Wrap.
type Authenticator struct {
	// ServerName is our server name: requests must be for it.
	ServerName string
	// Keys looks up origin servers' keys (keys.Ring in production). A
	// lookup that can return old keys must implement
	// signing.KeyStatusLookup, so that they are refused.
	Keys signing.KeyLookup
	// MaxBodyBytes bounds request bodies. Zero: DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// ReadTimeout bounds the time to read the body (against slow
	// senders). Zero: DefaultReadTimeout.
	ReadTimeout time.Duration
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
	// Logger for rejected requests. Nil: slog.Default().
	Logger *slog.Logger
}

// Wrap returns a handler that authenticates each request before next sees
// it. Rejections: 401 M_UNAUTHORIZED for missing, malformed or bad
// authorization, unknown or old keys and a destination that is not us; 413
// M_TOO_LARGE for oversized bodies; 400 M_NOT_JSON, before any signature
// check, for a body that the canonicaljson parser rejects (not JSON,
// invalid UTF-8, lone surrogate escapes, duplicate keys, nesting deeper
// than canonicaljson.MaxDepth); 408 for a body not read in time. next receives the body (re-read
// from memory) and the origin in the context.
func (a *Authenticator) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		max := a.MaxBodyBytes
		if max <= 0 {
			max = DefaultMaxBodyBytes
		}
		timeout := a.ReadTimeout
		if timeout <= 0 {
			timeout = DefaultReadTimeout
		}
		now := time.Now
		if a.Now != nil {
			now = a.Now
		}
		log := a.Logger
		if log == nil {
			log = slog.Default()
		}
		headers := r.Header.Values("Authorization")
		total := 0
		for _, h := range headers {
			total += len(h)
		}
		if len(headers) == 0 || total > 4*MaxAuthorizationBytes {
			writeError(w, http.StatusUnauthorized, "M_UNAUTHORIZED", "missing or oversized X-Matrix authorization")
			return
		}
		_ = http.NewResponseController(w).SetReadDeadline(now().Add(timeout))
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				writeError(w, http.StatusRequestEntityTooLarge, "M_TOO_LARGE", "request body too large")
				return
			}
			writeError(w, http.StatusRequestTimeout, "M_UNKNOWN", "could not read the request body in time")
			return
		}
		var content []byte
		if len(bytes.TrimSpace(body)) > 0 {
			// The canonical JSON parser, not encoding/json.Valid: it
			// also refuses invalid UTF-8, lone surrogate escapes and
			// duplicate keys, which no signature can cover.
			if _, err := canonicaljson.Append(nil, body, canonicaljson.Options{}); err != nil {
				writeError(w, http.StatusBadRequest, "M_NOT_JSON", "request body is not JSON: "+err.Error())
				return
			}
			content = body
		}
		origin, err := VerifyRequest(r.Context(), a.Keys, a.ServerName, now(), r.Method, r.RequestURI, headers, content)
		if err != nil {
			log.Info("federation: rejected request", "method", r.Method, "uri", r.RequestURI, "remote", r.RemoteAddr, "err", err)
			writeError(w, http.StatusUnauthorized, "M_UNAUTHORIZED", err.Error())
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), originKey{}, origin))
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

func writeError(w http.ResponseWriter, status int, errcode, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"errcode": errcode, "error": msg})
}
