package clientapi

import (
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/httputil"
	"golang.org/x/time/rate"
)

// RateLimit is a token bucket: Burst requests at once, refilled at
// PerSecond. The zero value means no limit.
type RateLimit struct {
	PerSecond float64
	Burst     int
}

// RateLimits are the limits per client address (login, registration) and
// per user (sends of events).
type RateLimits struct {
	Login, Register, Send RateLimit
}

// DefaultRateLimits are the limits of a server started without others.
var DefaultRateLimits = RateLimits{
	Login:    RateLimit{PerSecond: 0.5, Burst: 10},
	Register: RateLimit{PerSecond: 0.2, Burst: 5},
	Send:     RateLimit{PerSecond: 10, Burst: 50},
}

// limiter keeps one golang.org/x/time/rate limiter per key.
type limiter struct {
	limit RateLimit
	mu    sync.Mutex
	m     map[string]*rate.Limiter
}

func newLimiter(l RateLimit) *limiter { return &limiter{limit: l, m: map[string]*rate.Limiter{}} }

// allow reports whether the key may make a request now, and if not, how
// long until it may.
func (l *limiter) allow(key string) (bool, time.Duration) {
	if l == nil || l.limit.PerSecond <= 0 {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	lim := l.m[key]
	if lim == nil {
		if len(l.m) >= 100_000 {
			// Forget every key whose bucket is full again.
			for k, v := range l.m {
				if v.Tokens() >= float64(l.limit.Burst) {
					delete(l.m, k)
				}
			}
		}
		lim = rate.NewLimiter(rate.Limit(l.limit.PerSecond), max(l.limit.Burst, 1))
		l.m[key] = lim
	}
	r := lim.Reserve()
	if d := r.Delay(); d > 0 {
		r.Cancel()
		return false, d
	}
	return true, 0
}

// check answers 429 M_LIMIT_EXCEEDED when the key is over its limit.
func (l *limiter) check(key string) error {
	ok, wait := l.allow(key)
	if ok {
		return nil
	}
	e := httputil.Errorf(http.StatusTooManyRequests, "M_LIMIT_EXCEEDED", "too many requests")
	e.RetryAfter = wait
	return e
}

// clientAddr is the request's remote address without the port.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
