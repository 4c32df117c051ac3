package federation

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/gomatrixlib/gomatrixlib/internal/dnstest"
	"github.com/gomatrixlib/gomatrixlib/serverdiscovery"
)

// TestClientThroughDiscovery sends signed requests with the default path a
// homeserver uses: server discovery against the in-process DNS server, then
// TLS to the address it found, with the Host header and TLS name the spec
// gives for an explicit port (the server name and its host).
func TestClientThroughDiscovery(t *testing.T) {
	us := mustKey(t, "ed25519 1 YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1")
	var sawHost string
	srv := httptest.NewUnstartedServer(nil)
	srv.StartTLS()
	defer srv.Close()
	port := srv.Listener.Addr().(interface{ AddrPort() netip.AddrPort }).AddrPort().Port()
	// httptest's certificate is valid for example.com.
	dest := fmt.Sprintf("example.com:%d", port)
	auth := &Authenticator{ServerName: dest, Keys: keyTable{"us.example ed25519:1": us.Public()}}
	srv.Config.Handler = auth.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawHost = r.Host
		origin, _ := OriginFromContext(r.Context())
		fmt.Fprintf(w, `{"server":{"name":%q,"version":"1"}}`, origin)
	}))

	dns := dnstest.New(t)
	dns.AddA("example.com.", netip.MustParseAddr("127.0.0.1"))
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	res := &serverdiscovery.Resolver{DNSServer: dns.Addr,
		Guard: serverdiscovery.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}}
	c := &Client{ServerName: "us.example", Key: us, HTTPClient: &http.Client{
		Transport: &serverdiscovery.Transport{Resolver: res, TLSConfig: &tls.Config{RootCAs: roots}}}}
	v, err := c.Version(context.Background(), dest)
	if err != nil {
		t.Fatal(err)
	}
	if v.Server.Name != "us.example" || sawHost != dest {
		t.Fatalf("origin seen %q, Host %q (want %q)", v.Server.Name, sawHost, dest)
	}
	// Without the allow-list the guard refuses the loopback address DNS gave.
	c2 := &Client{ServerName: "us.example", Key: us, HTTPClient: &http.Client{
		Transport: &serverdiscovery.Transport{Resolver: &serverdiscovery.Resolver{DNSServer: dns.Addr}, TLSConfig: &tls.Config{RootCAs: roots}}}}
	if _, err := c2.Version(context.Background(), dest); err == nil || !strings.Contains(err.Error(), "127.0.0.1") && !strings.Contains(strings.ToLower(err.Error()), "forbidden") {
		t.Fatalf("guard did not refuse loopback: %v", err)
	}
}
