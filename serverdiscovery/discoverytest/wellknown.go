package discoverytest

import (
	"context"
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// WellKnownPath is the path of the server delegation document.
const WellKnownPath = "/.well-known/matrix/server"

// WellKnown is an HTTPS site on 127.0.0.1 that serves
// /.well-known/matrix/server for any host name the test sets, with
// certificates from a CA. Its Client sends every request, whatever the
// host, to the site. Safe for concurrent use.
type WellKnown struct {
	srv *httptest.Server
	ca  *CA

	mu       sync.Mutex
	handlers map[string]http.Handler
	hits     map[string]int
}

// StartWellKnown starts a site whose certificates come from ca. Call Close
// when done.
func StartWellKnown(ca *CA) *WellKnown {
	w := &WellKnown{ca: ca, handlers: map[string]http.Handler{}, hits: map[string]int{}}
	w.srv = httptest.NewUnstartedServer(w)
	w.srv.TLS = ca.ServerTLS()
	w.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	w.srv.StartTLS()
	return w
}

// NewWellKnown starts a site for the test tb and stops it when the test
// ends.
func NewWellKnown(tb testing.TB, ca *CA) *WellKnown {
	w := StartWellKnown(ca)
	tb.Cleanup(w.Close)
	return w
}

// Close stops the site.
func (w *WellKnown) Close() { w.srv.Close() }

// Addr returns the site's "127.0.0.1:port".
func (w *WellKnown) Addr() string { return w.srv.Listener.Addr().String() }

// Set makes host's /.well-known/matrix/server answer 200 with body.
func (w *WellKnown) Set(host, body string) {
	w.SetHandler(host, http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path != WellKnownPath {
			http.NotFound(rw, r)
			return
		}
		rw.Header().Set("Content-Type", "application/json")
		io.WriteString(rw, body)
	}))
}

// Delegate makes host delegate to target (an "m.server" value such as
// "matrix.b.test:8448").
func (w *WellKnown) Delegate(host, target string) {
	w.Set(host, `{"m.server":"`+target+`"}`)
}

// SetHandler makes h answer every request for host (h nil: 404).
func (w *WellKnown) SetHandler(host string, h http.Handler) {
	w.mu.Lock()
	if h == nil {
		delete(w.handlers, host)
	} else {
		w.handlers[host] = h
	}
	w.mu.Unlock()
}

// Hits reports how many requests for host the site received.
func (w *WellKnown) Hits(host string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.hits[host]
}

// ServeHTTP implements http.Handler: the handler set for the request's
// host (without port), or 404.
func (w *WellKnown) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	w.mu.Lock()
	h := w.handlers[host]
	w.hits[host]++
	w.mu.Unlock()
	if h == nil {
		http.NotFound(rw, r)
		return
	}
	h.ServeHTTP(rw, r)
}

// Client returns an HTTP client that sends every request to the site,
// whatever the URL's host, over TLS checked against the CA for that host:
// the HTTPClient of a serverdiscovery.Resolver under test.
func (w *WellKnown) Client() *http.Client {
	addr := w.Addr()
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
		TLSClientConfig: &tls.Config{RootCAs: w.ca.Pool()},
	}}
}
