package discoverytest_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/gomatrixlib/gomatrixlib/serverdiscovery"
	"github.com/gomatrixlib/gomatrixlib/serverdiscovery/discoverytest"
)

// TestResolverReachesServers: a resolver given the DNS server and the
// well-known site reaches an HTTPS server on 127.0.0.1 through
// delegation, and through SRV, with certificates checked against the CA.
func TestResolverReachesServers(t *testing.T) {
	t.Parallel()
	ca, err := discoverytest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	dns := discoverytest.NewDNS(t)
	wk := discoverytest.NewWellKnown(t, ca)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.Host)
	}))
	srv.TLS = ca.ServerTLS()
	srv.StartTLS()
	t.Cleanup(srv.Close)
	port := netip.MustParseAddrPort(srv.Listener.Addr().String()).Port()

	dns.AddA("matrix.b.test", netip.MustParseAddr("127.0.0.1"))
	wk.Delegate("a.test", fmt.Sprintf("matrix.b.test:%d", port))
	dns.AddSRV("_matrix-fed._tcp.c.test", 10, 0, port, "matrix.b.test")

	res := &serverdiscovery.Resolver{DNSServer: dns.Addr, HTTPClient: wk.Client(),
		Guard: serverdiscovery.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}}
	hc := &http.Client{Transport: &serverdiscovery.Transport{Resolver: res, TLSConfig: ca.ClientTLS()}}
	for name, wantHost := range map[string]string{
		"a.test": fmt.Sprintf("matrix.b.test:%d", port), // delegated with a port
		"c.test": "c.test",                              // SRV: Host is the server name
	} {
		resp, err := hc.Get("https://" + name + "/x")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != wantHost {
			t.Errorf("%s: server saw Host %q, want %q", name, body, wantHost)
		}
	}
	if wk.Hits("a.test") != 1 {
		t.Errorf("well-known hits for a.test: %d", wk.Hits("a.test"))
	}
	r, err := res.Resolve(context.Background(), "c.test")
	if err != nil || r.TLSServerName != "c.test" {
		t.Fatalf("c.test: %+v %v", r, err)
	}
}
