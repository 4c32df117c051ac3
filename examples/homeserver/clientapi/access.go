package clientapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/httputil"
	"github.com/tidwall/sjson"
	"golang.org/x/time/rate"
)

// Who may get in: registration modes and tokens, rate limits, /versions.

const tokenTypeStable, tokenTypeMSC = "m.login.registration_token", "org.matrix.msc3231.login.registration_token"

func validRegistrationToken(t string) bool {
	if t == "" || len(t) > 64 {
		return false
	}
	for _, c := range []byte(t) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '~' || c == '-') {
			return false
		}
	}
	return true
}

func (a *API) createRegistrationToken(ctx context.Context, token string) error {
	if !validRegistrationToken(token) {
		return invalidParam("registration tokens are 1 to 64 characters of A-Z a-z 0-9 . _ ~ -")
	}
	_, err := a.db.ExecContext(ctx, `INSERT INTO cs_registration_tokens (token) VALUES (?) ON CONFLICT DO NOTHING`, token)
	return err
}

// CreateRegistrationToken adds a registration token (an administrator's
// way in for token registration); an empty token makes a random one. It
// returns the token.
func (a *API) CreateRegistrationToken(ctx context.Context, token string) (string, error) {
	if token == "" {
		token = randomHex(16)
	}
	return token, a.createRegistrationToken(ctx, token)
}

func (a *API) registrationTokenValid(ctx context.Context, token string) (bool, error) {
	if !validRegistrationToken(token) {
		return false, nil
	}
	var n int
	err := a.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM cs_registration_tokens WHERE token = ?`, token).Scan(&n)
	return n > 0, err
}

func (a *API) tokenValidity(w http.ResponseWriter, r *http.Request) error {
	if a.ext.regMode == "closed" {
		return forbidden("registration is disabled")
	}
	ok, err := a.registrationTokenValid(r.Context(), r.URL.Query().Get("token"))
	if err != nil {
		return err
	}
	httputil.WriteJSON(w, 200, map[string]bool{"valid": ok})
	return nil
}

// registrationGate applies the registration mode before the register
// handler (which runs the m.login.dummy flow): closed refuses, token asks
// for m.login.registration_token and, once a valid token is given, lets
// the request through as a completed dummy flow.
func (a *API) registrationGate(h openHandler) openHandler {
	return func(w http.ResponseWriter, r *http.Request) error {
		switch a.ext.regMode {
		case "open":
			return h(w, r)
		case "closed":
			return forbidden("registration is disabled on this server")
		}
		if kind := r.URL.Query().Get("kind"); kind != "" && kind != "user" {
			return h(w, r) // guests: the handler refuses them
		}
		body, err := readBodyAgain(r)
		if err != nil {
			return err
		}
		var req struct {
			Auth *struct {
				Type    string `json:"type"`
				Token   string `json:"token"`
				Session string `json:"session"`
			} `json:"auth"`
		}
		if len(body) > 0 {
			if !json.Valid(body) {
				return httputil.Errorf(http.StatusBadRequest, "M_NOT_JSON", "request body is not JSON")
			}
			if err := json.Unmarshal(body, &req); err != nil {
				return httputil.Errorf(http.StatusBadRequest, "M_BAD_JSON", err.Error())
			}
		}
		challenge := func(session string, fail error) error {
			if session == "" {
				session = randomHex(8)
			}
			resp := map[string]any{"flows": []map[string]any{{"stages": []string{tokenTypeStable}}}, "params": map[string]any{}, "session": session}
			if he, ok := fail.(*httputil.Error); ok {
				resp["errcode"], resp["error"] = he.Errcode, he.Message
			}
			httputil.WriteJSON(w, http.StatusUnauthorized, resp)
			return nil
		}
		if req.Auth == nil || (req.Auth.Type != tokenTypeStable && req.Auth.Type != tokenTypeMSC) {
			sess := ""
			if req.Auth != nil {
				sess = req.Auth.Session
			}
			return challenge(sess, nil)
		}
		ok, err := a.registrationTokenValid(r.Context(), req.Auth.Token)
		if err != nil {
			return err
		}
		if !ok {
			return challenge(req.Auth.Session, forbidden("invalid registration token"))
		}
		body, err = sjson.SetBytes(body, "auth", map[string]string{"type": "m.login.dummy", "session": req.Auth.Session})
		if err != nil {
			return err
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		return h(w, r)
	}
}

// limiters hold one token bucket per client address and per user.
type limiters struct {
	limit rate.Limit
	burst int

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	lim  *rate.Limiter
	used time.Time
}

func newLimiters(perSecond float64, burst int) *limiters {
	if perSecond <= 0 {
		return nil
	}
	if burst <= 0 {
		burst = max(int(math.Ceil(perSecond)), 1)
	}
	return &limiters{limit: rate.Limit(perSecond), burst: burst, buckets: map[string]*bucket{}}
}

// allow takes a token from the key's bucket, or says how long to wait.
func (l *limiters) allow(key string) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buckets) > 100_000 {
		for k, b := range l.buckets {
			if now.Sub(b.used) > 10*time.Minute {
				delete(l.buckets, k)
			}
		}
	}
	b := l.buckets[key]
	if b == nil {
		b = &bucket{lim: rate.NewLimiter(l.limit, l.burst)}
		l.buckets[key] = b
	}
	b.used = now
	res := b.lim.ReserveN(now, 1)
	if !res.OK() {
		return false, time.Second
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d
	}
	return true, 0
}

func limitExceeded(w http.ResponseWriter, wait time.Duration) {
	secs := int64(math.Ceil(wait.Seconds()))
	w.Header().Set("Retry-After", strconv.FormatInt(max(secs, 1), 10))
	httputil.WriteJSON(w, http.StatusTooManyRequests, map[string]any{"errcode": "M_LIMIT_EXCEEDED", "error": "too many requests", "retry_after_ms": max(wait.Milliseconds(), 1)})
}

func clientAddr(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// limitAddr limits a route per client address.
func (a *API) limitAddr(h openHandler) openHandler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if ok, wait := a.ext.limits.allow("addr:" + clientAddr(r)); !ok {
			limitExceeded(w, wait)
			return nil
		}
		return h(w, r)
	}
}

// limitLoginUser limits logins per user named in the body (whatever the
// client address), against password guessing from many addresses.
func (a *API) limitLoginUser(h openHandler) openHandler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if a.ext.limits == nil {
			return h(w, r)
		}
		body, err := readBodyAgain(r)
		if err != nil {
			return err
		}
		var req struct {
			User       string `json:"user"`
			Identifier struct {
				User string `json:"user"`
			} `json:"identifier"`
		}
		_ = json.Unmarshal(body, &req) // the login handler reports bad bodies
		user := req.Identifier.User
		if user == "" {
			user = req.User
		}
		if !strings.HasPrefix(user, "@") {
			user = a.localUserID(user)
		}
		if ok, wait := a.ext.limits.allow("login:" + user); !ok {
			limitExceeded(w, wait)
			return nil
		}
		return h(w, r)
	}
}

// limitUser limits a route per user and per client address.
func (a *API) limitUser(h authedHandler) authedHandler {
	return func(w http.ResponseWriter, r *http.Request, d *device) error {
		if ok, wait := a.ext.limits.allow("user:" + d.userID); !ok {
			limitExceeded(w, wait)
			return nil
		}
		if ok, wait := a.ext.limits.allow("addr:" + clientAddr(r)); !ok {
			limitExceeded(w, wait)
			return nil
		}
		return h(w, r, d)
	}
}
