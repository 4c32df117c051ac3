package serverdiscovery

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/gomatrixlib/gomatrixlib/internal/dnstest"
)

// testCA issues certificates for test servers.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newCA(t testing.TB) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// leaf returns a certificate valid only for names (DNS names or IPs).
func (ca *testCA) leaf(t testing.TB, names ...string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
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
