package serverdiscovery

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/gomatrixlib/gomatrixlib/internal/dnstest"
	"github.com/gomatrixlib/gomatrixlib/serverdiscovery/discoverytest"
)

// testCA issues certificates for test servers: the test kit's CA.
type testCA struct {
	*discoverytest.CA
	pool *x509.CertPool
}

func newCA(t testing.TB) *testCA {
	t.Helper()
	ca, err := discoverytest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{CA: ca, pool: ca.Pool()}
}

// leaf returns a certificate valid only for names (DNS names or IPs).
func (ca *testCA) leaf(t testing.TB, names ...string) tls.Certificate {
	t.Helper()
	c, err := ca.Certificate(names...)
	if err != nil {
		t.Fatal(err)
	}
	return *c
}

// tlsServer starts an HTTPS server on 127.0.0.1 whose certificate is valid
// only for names.
func (ca *testCA) tlsServer(t testing.TB, h http.Handler, names ...string) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.leaf(t, names...)}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshake failures are expected in some tests
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// wellKnownSite serves /.well-known/matrix/server per Host and counts hits.
type wellKnownSite struct {
	mu       sync.Mutex
	handlers map[string]http.HandlerFunc
	hits     map[string]int
	srv      *httptest.Server
}

func (w *wellKnownSite) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	w.mu.Lock()
	h := w.handlers[r.Host]
	w.hits[r.Host]++
	w.mu.Unlock()
	if h == nil {
		http.NotFound(rw, r)
		return
	}
	h(rw, r)
}

func (w *wellKnownSite) set(host string, h http.HandlerFunc) {
	w.mu.Lock()
	w.handlers[host] = h
	w.mu.Unlock()
}

func (w *wellKnownSite) json(host, body string) {
	w.set(host, func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/matrix/server" {
			http.NotFound(rw, r)
			return
		}
		rw.Write([]byte(body))
	})
}

func (w *wellKnownSite) count(host string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.hits[host]
}

// client returns an HTTP client that sends every "<name>:443" to the site
// and trusts the test CA, so the well-known fetch is a real HTTPS exchange
// with certificate validation for the name.
func (w *wellKnownSite) client(ca *testCA) *http.Client {
	addr := w.srv.Listener.Addr().String()
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
		TLSClientConfig: &tls.Config{RootCAs: ca.pool},
	}}
}

type fixture struct {
	ca  *testCA
	dns *dnstest.Server
	wk  *wellKnownSite
	r   *Resolver
	now time.Time
	mu  sync.Mutex
}

func (f *fixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

// newFixture builds a resolver against an in-process DNS server and a
// well-known site whose certificate covers wkNames.
func newFixture(t testing.TB, wkNames ...string) *fixture {
	t.Helper()
	f := &fixture{ca: newCA(t), dns: dnstest.New(t), now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	f.wk = &wellKnownSite{handlers: map[string]http.HandlerFunc{}, hits: map[string]int{}}
	if len(wkNames) == 0 {
		wkNames = []string{"example.test"}
	}
	f.wk.srv = f.ca.tlsServer(t, f.wk, wkNames...)
	f.r = &Resolver{
		DNSServer:  f.dns.Addr,
		HTTPClient: f.wk.client(f.ca),
		Now:        f.clock,
		Timeout:    3 * time.Second,
	}
	return f
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func loopback() []netip.Prefix {
	return []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
}
