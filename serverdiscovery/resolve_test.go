package serverdiscovery

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestResolveSteps checks every step of the algorithm: the step taken, the
// addresses (and so the port), the Host header and the TLS server name.
// Decoys (SRV records, well-knowns that must not be consulted) make a wrong
// branch produce a different answer.
func TestResolveSteps(t *testing.T) {
	names := []string{"example.test", "deleg.test", "other.test"}
	ip := netip.MustParseAddr
	tests := []struct {
		name       string
		server     string
		setup      func(f *fixture)
		step       Step
		addrs      []netip.AddrPort
		host, tls  string
		delegated  string
		noWKFetch  bool   // the well-known must not be fetched at all
		noDelegWK  string // host whose well-known must not be fetched
		wellKnownE error  // expected Result.WellKnownErr
	}{
		{name: "1 IPv4 literal", server: "198.51.100.7", step: StepIPLiteral,
			addrs: []netip.AddrPort{ap("198.51.100.7:8448")}, host: "198.51.100.7", tls: "198.51.100.7", noWKFetch: true},
		{name: "1 IPv4 literal with port", server: "198.51.100.7:1234", step: StepIPLiteral,
			addrs: []netip.AddrPort{ap("198.51.100.7:1234")}, host: "198.51.100.7:1234", tls: "198.51.100.7", noWKFetch: true},
		{name: "1 IPv6 literal", server: "[2001:db8::1]", step: StepIPLiteral,
			addrs: []netip.AddrPort{ap("[2001:db8::1]:8448")}, host: "[2001:db8::1]", tls: "2001:db8::1", noWKFetch: true},
		{name: "1 IPv6 literal with port", server: "[2001:db8::1]:5678", step: StepIPLiteral,
			addrs: []netip.AddrPort{ap("[2001:db8::1]:5678")}, host: "[2001:db8::1]:5678", tls: "2001:db8::1", noWKFetch: true},
		{name: "2 explicit port", server: "example.test:8443",
			setup: func(f *fixture) {
				f.dns.AddA("example.test", ip("192.0.2.10"), ip("2001:db8::10"))
				f.dns.AddSRV("_matrix-fed._tcp.example.test", 1, 1, 9999, "decoy.test")
				f.wk.json("example.test", `{"m.server":"deleg.test"}`)
			},
			step: StepExplicitPort, addrs: []netip.AddrPort{ap("192.0.2.10:8443"), ap("[2001:db8::10]:8443")},
			host: "example.test:8443", tls: "example.test", noWKFetch: true},
		{name: "3.1 delegated IP literal", server: "example.test",
			setup: func(f *fixture) {
				f.wk.json("example.test", `{"m.server":"192.0.2.20"}`)
				f.dns.AddA("example.test", ip("192.0.2.99"))
			},
			step: StepDelegatedIPLiteral, addrs: []netip.AddrPort{ap("192.0.2.20:8448")},
			host: "192.0.2.20", tls: "192.0.2.20", delegated: "192.0.2.20"},
		{name: "3.1 delegated IP literal with port", server: "example.test",
			setup: func(f *fixture) { f.wk.json("example.test", `{"m.server":"[2001:db8::20]:9000"}`) },
			step:  StepDelegatedIPLiteral, addrs: []netip.AddrPort{ap("[2001:db8::20]:9000")},
			host: "[2001:db8::20]:9000", tls: "2001:db8::20", delegated: "[2001:db8::20]:9000"},
		{name: "3.2 delegated explicit port", server: "example.test",
			setup: func(f *fixture) {
				f.wk.json("example.test", `{"m.server":"deleg.test:9443"}`)
				f.wk.json("deleg.test", `{"m.server":"other.test"}`)
				f.dns.AddA("deleg.test", ip("192.0.2.21"))
				f.dns.AddSRV("_matrix-fed._tcp.deleg.test", 1, 1, 9999, "decoy.test")
			},
			step: StepDelegatedExplicitPort, addrs: []netip.AddrPort{ap("192.0.2.21:9443")},
			host: "deleg.test:9443", tls: "deleg.test", delegated: "deleg.test:9443", noDelegWK: "deleg.test"},
		{name: "3.3 delegated SRV", server: "example.test",
			setup: func(f *fixture) {
				f.wk.json("example.test", `{"m.server":"deleg.test"}`)
				f.wk.json("deleg.test", `{"m.server":"other.test"}`)
				f.dns.AddSRV("_matrix-fed._tcp.deleg.test", 10, 0, 7443, "target.test")
				f.dns.AddSRV("_matrix._tcp.deleg.test", 10, 0, 7444, "target.test")
				f.dns.AddSRV("_matrix-fed._tcp.example.test", 10, 0, 7445, "target.test")
				f.dns.AddA("target.test", ip("192.0.2.30"))
				f.dns.AddA("deleg.test", ip("192.0.2.31"))
			},
			step: StepDelegatedSRV, addrs: []netip.AddrPort{ap("192.0.2.30:7443")},
			host: "deleg.test", tls: "deleg.test", delegated: "deleg.test", noDelegWK: "deleg.test"},
		{name: "3.4 delegated legacy SRV", server: "example.test",
			setup: func(f *fixture) {
				f.wk.json("example.test", `{"m.server":"deleg.test"}`)
				f.dns.AddSRV("_matrix._tcp.deleg.test", 10, 0, 7444, "target.test")
				f.dns.AddSRV("_matrix-fed._tcp.example.test", 10, 0, 7445, "target.test")
				f.dns.AddA("target.test", ip("192.0.2.30"))
				f.dns.AddA("deleg.test", ip("192.0.2.31"))
			},
			step: StepDelegatedLegacySRV, addrs: []netip.AddrPort{ap("192.0.2.30:7444")},
			host: "deleg.test", tls: "deleg.test", delegated: "deleg.test"},
		{name: "3.5 delegated default port", server: "example.test",
			setup: func(f *fixture) {
				f.wk.json("example.test", `{"m.server":"deleg.test"}`)
				f.dns.AddSRV("_matrix-fed._tcp.example.test", 10, 0, 7445, "target.test")
				f.dns.AddA("target.test", ip("192.0.2.30"))
				f.dns.AddA("deleg.test", ip("192.0.2.31"))
				f.dns.AddA("example.test", ip("192.0.2.32"))
			},
			step: StepDelegatedDefaultPort, addrs: []netip.AddrPort{ap("192.0.2.31:8448")},
			host: "deleg.test", tls: "deleg.test", delegated: "deleg.test"},
		{name: "4 SRV after well-known 404", server: "example.test",
			setup: func(f *fixture) {
				f.dns.AddSRV("_matrix-fed._tcp.example.test", 10, 0, 7445, "target.test")
				f.dns.AddSRV("_matrix._tcp.example.test", 10, 0, 7446, "target.test")
				f.dns.AddA("target.test", ip("192.0.2.30"))
				f.dns.AddA("example.test", ip("192.0.2.32"))
			},
			step: StepSRV, addrs: []netip.AddrPort{ap("192.0.2.30:7445")},
			host: "example.test", tls: "example.test", wellKnownE: ErrWellKnownInvalid},
		{name: "5 legacy SRV", server: "example.test",
			setup: func(f *fixture) {
				f.wk.json("example.test", `not json`)
				f.dns.AddSRV("_matrix._tcp.example.test", 10, 0, 7446, "target.test")
				f.dns.AddA("target.test", ip("192.0.2.30"))
				f.dns.AddA("example.test", ip("192.0.2.32"))
			},
			step: StepLegacySRV, addrs: []netip.AddrPort{ap("192.0.2.30:7446")},
			host: "example.test", tls: "example.test", wellKnownE: ErrWellKnownInvalid},
		{name: "6 default port", server: "example.test",
			setup: func(f *fixture) {
				f.wk.json("example.test", `{"m.server": 12}`)
				f.dns.AddA("example.test", ip("192.0.2.32"), ip("2001:db8::32"))
			},
			step: StepDefaultPort, addrs: []netip.AddrPort{ap("192.0.2.32:8448"), ap("[2001:db8::32]:8448")},
			host: "example.test", tls: "example.test", wellKnownE: ErrWellKnownInvalid},
		{name: "6 default port via CNAME", server: "example.test",
			setup: func(f *fixture) {
				f.dns.AddCNAME("example.test", "real.test")
				f.dns.AddA("real.test", ip("192.0.2.33"))
			},
			step: StepDefaultPort, addrs: []netip.AddrPort{ap("192.0.2.33:8448")},
			host: "example.test", tls: "example.test", wellKnownE: ErrWellKnownInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, names...)
			if tc.setup != nil {
				tc.setup(f)
			}
			res, err := f.r.Resolve(context.Background(), tc.server)
			if err != nil {
				t.Fatalf("Resolve(%q): %v", tc.server, err)
			}
			if res.Step != tc.step {
				t.Errorf("step = %s, want %s", res.Step, tc.step)
			}
			if !slices.Equal(res.Addrs, tc.addrs) {
				t.Errorf("addrs = %v, want %v", res.Addrs, tc.addrs)
			}
			if res.Host != tc.host {
				t.Errorf("Host = %q, want %q", res.Host, tc.host)
			}
			if res.TLSServerName != tc.tls {
				t.Errorf("TLS server name = %q, want %q", res.TLSServerName, tc.tls)
			}
			if res.Delegated != tc.delegated {
				t.Errorf("delegated = %q, want %q", res.Delegated, tc.delegated)
			}
			if res.ServerName != tc.server {
				t.Errorf("server name = %q", res.ServerName)
			}
			if tc.wellKnownE == nil && res.WellKnownErr != nil {
				t.Errorf("unexpected WellKnownErr: %v", res.WellKnownErr)
			}
			if tc.wellKnownE != nil && !errors.Is(res.WellKnownErr, tc.wellKnownE) {
				t.Errorf("WellKnownErr = %v, want %v", res.WellKnownErr, tc.wellKnownE)
			}
			if tc.noWKFetch && f.wk.count("example.test") != 0 {
				t.Errorf("well-known fetched for a name with a port or an IP literal")
			}
			if !tc.noWKFetch && res.Step > StepExplicitPort && f.wk.count("example.test") != 1 {
				t.Errorf("well-known of example.test fetched %d times, want 1", f.wk.count("example.test"))
			}
			if tc.noDelegWK != "" && f.wk.count(tc.noDelegWK) != 0 {
				t.Errorf("second well-known fetched for delegated %s", tc.noDelegWK)
			}
		})
	}
}

func TestResolveSRVOrder(t *testing.T) {
	f := newFixture(t)
	f.dns.AddSRV("_matrix-fed._tcp.example.test", 20, 0, 2000, "b.test")
	f.dns.AddSRV("_matrix-fed._tcp.example.test", 10, 5, 1000, "a.test")
	f.dns.AddSRV("_matrix-fed._tcp.example.test", 10, 5, 1001, "a.test")
	f.dns.AddSRV("_matrix-fed._tcp.example.test", 30, 0, 3000, "missing.test") // no address: skipped
	f.dns.AddA("a.test", netip.MustParseAddr("192.0.2.1"))
	f.dns.AddA("b.test", netip.MustParseAddr("192.0.2.2"))
	f.r.ResultTTL = -1 // re-resolve every time
	for _, pick := range []uint64{0, 10} {
		f.r.randN = func(n uint64) uint64 { return min(pick, n-1) }
		res, err := f.r.Resolve(context.Background(), "example.test")
		if err != nil {
			t.Fatal(err)
		}
		first := ap("192.0.2.1:1000")
		second := ap("192.0.2.1:1001")
		if pick == 10 {
			first, second = second, first
		}
		want := []netip.AddrPort{first, second, ap("192.0.2.2:2000")}
		if !slices.Equal(res.Addrs, want) {
			t.Errorf("pick %d: addrs = %v, want %v", pick, res.Addrs, want)
		}
	}
}

func TestOrderSRVWeights(t *testing.T) {
	// Weighted selection: with weights 0 and 100 the zero-weight record
	// comes first only when the random draw is 0.
	recs := func() []*dns.SRV {
		return []*dns.SRV{{Priority: 1, Weight: 100, Port: 1}, {Priority: 1, Weight: 0, Port: 2}}
	}
	got := orderSRV(recs(), func(uint64) uint64 { return 0 })
	if got[0].Port != 2 {
		t.Errorf("draw 0: first port %d, want the zero-weight record", got[0].Port)
	}
	got = orderSRV(recs(), func(uint64) uint64 { return 1 })
	if got[0].Port != 1 || got[1].Port != 2 {
		t.Errorf("draw 1: order %d,%d, want 1,2", got[0].Port, got[1].Port)
	}
}

// TestResolveEndToEnd dials the results through Transport against TLS
// servers whose certificate is valid only for the expected TLS name and
// whose handler checks the Host header, so a wrong port, TLS name or Host
// fails the request.
func TestResolveEndToEnd(t *testing.T) {
	tests := []struct {
		name   string
		server string // may contain PORT, replaced by the target's port
		tls    string // the target certificate's only name
		host   string
		setup  func(f *fixture, port uint16)
		step   Step
	}{
		{name: "1 IP literal", server: "127.0.0.1:PORT", tls: "127.0.0.1", host: "127.0.0.1:PORT", step: StepIPLiteral},
		{name: "2 explicit port", server: "example.test:PORT", tls: "example.test", host: "example.test:PORT", step: StepExplicitPort,
			setup: func(f *fixture, port uint16) { f.dns.AddA("example.test", netip.MustParseAddr("127.0.0.1")) }},
		{name: "3.1 delegated IP", server: "example.test", tls: "127.0.0.1", host: "127.0.0.1:PORT", step: StepDelegatedIPLiteral,
			setup: func(f *fixture, port uint16) {
				f.wk.json("example.test", `{"m.server":"127.0.0.1:`+itoa(port)+`"}`)
			}},
		{name: "3.2 delegated port", server: "example.test", tls: "deleg.test", host: "deleg.test:PORT", step: StepDelegatedExplicitPort,
			setup: func(f *fixture, port uint16) {
				f.wk.json("example.test", `{"m.server":"deleg.test:`+itoa(port)+`"}`)
				f.dns.AddA("deleg.test", netip.MustParseAddr("127.0.0.1"))
			}},
		{name: "3.3 delegated SRV", server: "example.test", tls: "deleg.test", host: "deleg.test", step: StepDelegatedSRV,
			setup: func(f *fixture, port uint16) {
				f.wk.json("example.test", `{"m.server":"deleg.test"}`)
				f.dns.AddSRV("_matrix-fed._tcp.deleg.test", 1, 0, port, "target.test")
				f.dns.AddA("target.test", netip.MustParseAddr("127.0.0.1"))
			}},
		{name: "3.4 delegated legacy SRV", server: "example.test", tls: "deleg.test", host: "deleg.test", step: StepDelegatedLegacySRV,
			setup: func(f *fixture, port uint16) {
				f.wk.json("example.test", `{"m.server":"deleg.test"}`)
				f.dns.AddSRV("_matrix._tcp.deleg.test", 1, 0, port, "target.test")
				f.dns.AddA("target.test", netip.MustParseAddr("127.0.0.1"))
			}},
		{name: "4 SRV", server: "example.test", tls: "example.test", host: "example.test", step: StepSRV,
			setup: func(f *fixture, port uint16) {
				f.dns.AddSRV("_matrix-fed._tcp.example.test", 1, 0, port, "target.test")
				f.dns.AddA("target.test", netip.MustParseAddr("127.0.0.1"))
			}},
		{name: "5 legacy SRV", server: "example.test", tls: "example.test", host: "example.test", step: StepLegacySRV,
			setup: func(f *fixture, port uint16) {
				f.dns.AddSRV("_matrix._tcp.example.test", 1, 0, port, "target.test")
				f.dns.AddA("target.test", netip.MustParseAddr("127.0.0.1"))
			}},
	}
	for i, tc := range tests {
		scheme := "https"
		if i%2 == 1 {
			scheme = "matrix-federation"
		}
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, "example.test")
			f.r.Guard.Allow = loopback()
			hosts := make(chan string, 1)
			target := f.ca.tlsServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hosts <- r.Host
				w.Write([]byte("ok"))
			}), tc.tls)
			port := netip.MustParseAddrPort(target.Listener.Addr().String()).Port()
			if tc.setup != nil {
				tc.setup(f, port)
			}
			server := replacePort(tc.server, port)
			tr := &Transport{Resolver: f.r, TLSConfig: &tls.Config{RootCAs: f.ca.pool}}
			res, err := f.r.Resolve(context.Background(), server)
			if err != nil {
				t.Fatal(err)
			}
			if res.Step != tc.step {
				t.Fatalf("step %s, want %s", res.Step, tc.step)
			}
			resp, err := (&http.Client{Transport: tr}).Get(scheme + "://" + server + "/x")
			if err != nil {
				t.Fatalf("request to %s: %v", server, err)
			}
			resp.Body.Close()
			if gotHost, want := <-hosts, replacePort(tc.host, port); gotHost != want {
				t.Errorf("Host header %q, want %q", gotHost, want)
			}
			tr.CloseIdleConnections()
		})
	}
}

func itoa(p uint16) string { return strconv.Itoa(int(p)) }

func replacePort(s string, port uint16) string { return strings.ReplaceAll(s, "PORT", itoa(port)) }

func TestTransportErrors(t *testing.T) {
	f := newFixture(t)
	tr := &Transport{Resolver: f.r}
	c := &http.Client{Transport: tr}
	if _, err := c.Get("http://example.test/x"); err == nil || !strings.Contains(err.Error(), "https or matrix-federation") {
		t.Errorf("plain http: %v", err)
	}
	if _, err := c.Get("https://10.0.0.1:8448/x"); !errors.Is(err, ErrForbiddenAddress) {
		t.Errorf("private literal: %v", err)
	}
	if _, err := c.Get("https://bad_name/x"); !errors.Is(err, ErrInvalidServerName) {
		t.Errorf("invalid name: %v", err)
	}
}

func TestResultCache(t *testing.T) {
	f := newFixture(t)
	f.r.ResultTTL = 10 * time.Minute // capped by the DNS TTL (dnstest.TTL = 60 s)
	f.dns.AddSRV("_matrix-fed._tcp.example.test", 1, 0, 8443, "target.test")
	f.dns.AddA("target.test", netip.MustParseAddr("192.0.2.1"))
	f.dns.AddA("ported.test", netip.MustParseAddr("192.0.2.2"))
	queries := func() int {
		return f.dns.Queries("_matrix-fed._tcp.example.test", dns.TypeSRV) + f.dns.Queries("ported.test", dns.TypeA)
	}
	resolve := func(name string) {
		t.Helper()
		if _, err := f.r.Resolve(context.Background(), name); err != nil {
			t.Fatal(err)
		}
	}
	resolve("example.test")
	resolve("ported.test:8448")
	if q := queries(); q != 2 {
		t.Fatalf("%d queries after first resolutions, want 2", q)
	}
	f.advance(59 * time.Second)
	resolve("example.test")
	resolve("ported.test:8448")
	if q := queries(); q != 2 {
		t.Errorf("%d queries within the DNS TTL, want 2 (cached results)", q)
	}
	res, _ := f.r.Resolve(context.Background(), "example.test")
	res.Addrs[0] = ap("198.51.100.9:1") // callers own their copy
	f.advance(2 * time.Second)
	resolve("example.test")
	resolve("ported.test:8448")
	if q := queries(); q != 4 {
		t.Errorf("%d queries after the DNS TTL, want 4", q)
	}
	res, _ = f.r.Resolve(context.Background(), "example.test")
	if res.Addrs[0] != ap("192.0.2.1:8443") {
		t.Errorf("cached result was modified through a returned copy: %v", res.Addrs)
	}
	f.r.Forget("example.test")
	resolve("example.test")
	if q := queries(); q != 5 {
		t.Errorf("%d queries after Forget, want 5", q)
	}
}
