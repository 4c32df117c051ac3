package serverdiscovery

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestResolveBadInput(t *testing.T) {
	ip := netip.MustParseAddr
	tests := []struct {
		name   string
		server string
		setup  func(f *fixture)
		err    error // from Resolve; nil: Resolve succeeds
		wkErr  error // expected Result.WellKnownErr when Resolve succeeds
	}{
		{name: "empty name", server: "", err: ErrInvalidServerName},
		{name: "IP literal port 0", server: "1.2.3.4:0", err: ErrInvalidServerName},
		{name: "IP literal port too big", server: "1.2.3.4:70000", err: ErrInvalidServerName},
		{name: "IP literal 6-digit port", server: "1.2.3.4:123456", err: ErrInvalidServerName},
		{name: "IP literal empty port", server: "1.2.3.4:", err: ErrInvalidServerName},
		{name: "IPv6 literal bad port", server: "[2001:db8::1]:x", err: ErrInvalidServerName},
		{name: "IPv6 unbracketed", server: "2001:db8::1", err: ErrInvalidServerName},
		{name: "IPv6 unclosed", server: "[2001:db8::1", err: ErrInvalidServerName},
		{name: "IPv6 junk", server: "[::g]", err: ErrInvalidServerName},
		{name: "IPv4 in brackets", server: "[1.2.3.4]", err: ErrInvalidServerName},
		{name: "bad IPv4", server: "1.2.3.256", err: ErrInvalidServerName},
		{name: "underscore", server: "matrix_org.com", err: ErrInvalidServerName},
		{name: "space", server: "exa mple.com", err: ErrInvalidServerName},
		{name: "too long", server: strings.Repeat("a", 256), err: ErrInvalidServerName},
		{name: "empty label", server: "a..b", err: ErrInvalidServerName},
		{name: "leading hyphen", server: "-a.b", err: ErrInvalidServerName},
		{name: "digits only", server: "1.2.3", err: ErrInvalidServerName},
		{name: "long label", server: strings.Repeat("a", 64) + ".b", err: ErrInvalidServerName},
		{name: "private IP literal", server: "192.168.1.1", err: ErrForbiddenAddress},
		{name: "loopback IP literal", server: "127.0.0.1:8448", err: ErrForbiddenAddress},
		{name: "mapped loopback literal", server: "[::ffff:127.0.0.1]", err: ErrForbiddenAddress},
		{name: "name to loopback", server: "example.test:8448",
			setup: func(f *fixture) { f.dns.AddA("example.test", ip("127.0.0.1")) }, err: ErrForbiddenAddress},
		{name: "SRV to private", server: "example.test",
			setup: func(f *fixture) {
				f.dns.AddSRV("_matrix-fed._tcp.example.test", 1, 0, 8448, "inner.test")
				f.dns.AddA("inner.test", ip("10.0.0.1"), ip("fd00::1"))
			}, err: ErrForbiddenAddress},
		{name: "SRV target dot", server: "example.test",
			setup: func(f *fixture) { f.dns.AddSRV("_matrix-fed._tcp.example.test", 0, 0, 0, ".") },
			err:   ErrServiceUnavailable},
		{name: "legacy SRV target dot", server: "example.test",
			setup: func(f *fixture) { f.dns.AddSRV("_matrix._tcp.example.test", 0, 0, 0, ".") },
			err:   ErrServiceUnavailable},
		{name: "delegated SRV to link-local", server: "example.test",
			setup: func(f *fixture) {
				f.wk.json("example.test", `{"m.server":"deleg.test"}`)
				f.dns.AddSRV("_matrix-fed._tcp.deleg.test", 1, 0, 8448, "inner.test")
				f.dns.AddA("inner.test", ip("169.254.169.254"))
			}, err: ErrForbiddenAddress},
		{name: "delegated private IP", server: "example.test",
			setup: func(f *fixture) { f.wk.json("example.test", `{"m.server":"10.1.2.3:8448"}`) },
			err:   ErrForbiddenAddress},
		{name: "SERVFAIL", server: "example.test",
			setup: func(f *fixture) { f.dns.SetRcode("_matrix-fed._tcp.example.test", dns.TypeSRV, dns.RcodeServerFailure) },
			err:   ErrDNS},
		{name: "NXDOMAIN", server: "nowhere.test", err: ErrNoAddress},

		// Well-known problems fall through to step 4-6 with WellKnownErr set.
		{name: "well-known not JSON", server: "example.test",
			setup: func(f *fixture) {
				f.wk.json("example.test", `<html>`)
				f.dns.AddA("example.test", ip("192.0.2.1"))
			}, wkErr: ErrWellKnownInvalid},
		{name: "well-known invalid server name", server: "example.test",
			setup: func(f *fixture) {
				f.wk.json("example.test", `{"m.server":"bad_name.test"}`)
				f.dns.AddA("example.test", ip("192.0.2.1"))
			}, wkErr: ErrInvalidServerName},
		{name: "well-known IP literal bad port", server: "example.test",
			setup: func(f *fixture) {
				f.wk.json("example.test", `{"m.server":"1.2.3.4:99999"}`)
				f.dns.AddA("example.test", ip("192.0.2.1"))
			}, wkErr: ErrInvalidServerName},
		{name: "well-known huge", server: "example.test",
			setup: func(f *fixture) {
				f.wk.set("example.test", func(w http.ResponseWriter, r *http.Request) {
					w.Write([]byte(`{"m.server":"deleg.test","pad":"`))
					chunk := []byte(strings.Repeat("x", 1<<16))
					for range 64 { // 4 MiB, far over the limit
						if _, err := w.Write(chunk); err != nil {
							return
						}
					}
					w.Write([]byte(`"}`))
				})
				f.dns.AddA("example.test", ip("192.0.2.1"))
			}, wkErr: ErrWellKnownTooLarge},
		{name: "well-known redirect loop", server: "example.test",
			setup: func(f *fixture) {
				f.wk.set("example.test", func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path == "/.well-known/matrix/server" {
						http.Redirect(w, r, "/a", http.StatusFound)
					} else {
						http.Redirect(w, r, "/.well-known/matrix/server", http.StatusFound)
					}
				})
				f.dns.AddA("example.test", ip("192.0.2.1"))
			}, wkErr: ErrRedirectLoop},
		{name: "well-known endless redirects", server: "example.test",
			setup: func(f *fixture) {
				f.wk.set("example.test", func(w http.ResponseWriter, r *http.Request) {
					http.Redirect(w, r, r.URL.Path+"x", http.StatusFound)
				})
				f.dns.AddA("example.test", ip("192.0.2.1"))
			}, wkErr: ErrTooManyRedirects},
		{name: "well-known redirect to http", server: "example.test",
			setup: func(f *fixture) {
				f.wk.set("example.test", func(w http.ResponseWriter, r *http.Request) {
					http.Redirect(w, r, "http://example.test/.well-known/matrix/server", http.StatusFound)
				})
				f.dns.AddA("example.test", ip("192.0.2.1"))
			}, wkErr: ErrTooManyRedirects},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, "example.test")
			if tc.setup != nil {
				tc.setup(f)
			}
			res, err := f.r.Resolve(context.Background(), tc.server)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("Resolve(%.40q) err = %v, want %v (result %+v)", tc.server, err, tc.err, res)
				}
				if res != nil {
					t.Errorf("non-nil result with error")
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if res.Step != StepDefaultPort || res.Host != "example.test" || res.TLSServerName != "example.test" {
				t.Errorf("fallback result %+v", res)
			}
			if !errors.Is(res.WellKnownErr, tc.wkErr) {
				t.Errorf("WellKnownErr = %v, want %v", res.WellKnownErr, tc.wkErr)
			}
		})
	}
}

func TestWellKnownRedirectFollowed(t *testing.T) {
	f := newFixture(t, "example.test")
	f.wk.set("example.test", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/.well-known/matrix/server" {
			http.Redirect(w, r, "/elsewhere", http.StatusMovedPermanently)
			return
		}
		w.Header().Set("Content-Type", "text/plain") // content type is ignored
		w.Write([]byte(`{"m.server":"198.51.100.1:443"}`))
	})
	res, err := f.r.Resolve(context.Background(), "example.test")
	if err != nil {
		t.Fatal(err)
	}
	if res.Step != StepDelegatedIPLiteral || res.Host != "198.51.100.1:443" {
		t.Errorf("result %+v", res)
	}
}

func TestWellKnownCache(t *testing.T) {
	f := newFixture(t, "example.test")
	var mu sync.Mutex
	header, body := "", `{"m.server":"198.51.100.1"}`
	status := 200
	f.wk.set("example.test", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		for line := range strings.Lines(header) {
			k, v, _ := strings.Cut(strings.TrimSpace(line), ": ")
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		w.Write([]byte(body))
	})
	f.dns.AddA("example.test", netip.MustParseAddr("192.0.2.1"))
	set := func(h string, st int) {
		mu.Lock()
		header, status = h, st
		mu.Unlock()
	}
	resolve := func(wantStep Step) {
		t.Helper()
		res, err := f.r.Resolve(context.Background(), "example.test")
		if err != nil {
			t.Fatal(err)
		}
		if res.Step != wantStep {
			t.Fatalf("step %s, want %s", res.Step, wantStep)
		}
	}
	hits := func(want int) {
		t.Helper()
		if got := f.wk.count("example.test"); got != want {
			t.Fatalf("well-known fetched %d times, want %d", got, want)
		}
	}

	// No header: 24 h.
	resolve(StepDelegatedIPLiteral)
	hits(1)
	f.advance(23 * time.Hour)
	resolve(StepDelegatedIPLiteral)
	hits(1)
	f.advance(time.Hour + time.Second)
	set("Cache-Control: max-age=60", 200)
	resolve(StepDelegatedIPLiteral)
	hits(2)
	// max-age=60
	f.advance(59 * time.Second)
	resolve(StepDelegatedIPLiteral)
	hits(2)
	f.advance(2 * time.Second)
	set("Cache-Control: public, max-age=999999999", 200)
	resolve(StepDelegatedIPLiteral)
	hits(3)
	// capped at 48 h
	f.advance(47 * time.Hour)
	resolve(StepDelegatedIPLiteral)
	hits(3)
	f.advance(time.Hour + time.Second)
	set("Cache-Control: no-store", 200)
	resolve(StepDelegatedIPLiteral)
	hits(4)
	// no-store: not kept
	set("Expires: "+f.clock().Add(10*time.Minute).Format(http.TimeFormat)+"\nDate: "+f.clock().Format(http.TimeFormat), 200)
	resolve(StepDelegatedIPLiteral)
	hits(5)
	// Expires in 10 minutes (no Date header: relative to our clock).
	f.advance(9 * time.Minute)
	resolve(StepDelegatedIPLiteral)
	hits(5)
	f.advance(2 * time.Minute)

	// Failures: cached 2 min, then 4, 8, ... up to 1 h.
	set("", 500)
	resolve(StepDefaultPort)
	hits(6)
	f.advance(MinFailureCache - time.Second)
	resolve(StepDefaultPort)
	hits(6)
	f.advance(2 * time.Second)
	resolve(StepDefaultPort) // second failure: 4 min
	hits(7)
	f.advance(3 * time.Minute)
	resolve(StepDefaultPort)
	hits(7)
	f.advance(2 * time.Minute)
	resolve(StepDefaultPort)
	hits(8)
	if got := failureLifetime(20); got != MaxFailureCache {
		t.Errorf("failureLifetime(20) = %v, want %v", got, MaxFailureCache)
	}
	// Recovery resets the back-off.
	f.advance(MaxFailureCache)
	set("", 200)
	resolve(StepDelegatedIPLiteral)
	hits(9)
	f.r.Forget("example.test")
	resolve(StepDelegatedIPLiteral)
	hits(10)
}

func TestCacheLifetime(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		h    map[string]string
		want time.Duration
	}{
		{nil, DefaultWellKnownCache},
		{map[string]string{"Cache-Control": "max-age=3600"}, time.Hour},
		{map[string]string{"Cache-Control": "max-age=0"}, 0},
		{map[string]string{"Cache-Control": "no-cache"}, 0},
		{map[string]string{"Cache-Control": "max-age=-5"}, DefaultWellKnownCache},
		{map[string]string{"Cache-Control": "max-age=abc"}, DefaultWellKnownCache},
		{map[string]string{"Cache-Control": "max-age=99999999999999999999"}, DefaultWellKnownCache},
		{map[string]string{"Cache-Control": "max-age=9999999999"}, MaxWellKnownCache},
		{map[string]string{"Expires": "garbage"}, 0},
		{map[string]string{"Expires": now.Add(time.Hour).Format(http.TimeFormat)}, time.Hour},
		{map[string]string{"Expires": now.Add(time.Hour).Format(http.TimeFormat), "Date": now.Add(-time.Hour).Format(http.TimeFormat)}, 2 * time.Hour},
		{map[string]string{"Expires": now.Add(-time.Hour).Format(http.TimeFormat)}, 0},
		{map[string]string{"Expires": now.Add(100 * time.Hour).Format(http.TimeFormat)}, MaxWellKnownCache},
		{map[string]string{"Expires": now.Add(100 * time.Hour).Format(http.TimeFormat), "Cache-Control": "max-age=60"}, time.Minute},
	}
	for _, tc := range tests {
		h := http.Header{}
		for k, v := range tc.h {
			h.Set(k, v)
		}
		if got := cacheLifetime(h, now); got != tc.want {
			t.Errorf("cacheLifetime(%v) = %v, want %v", tc.h, got, tc.want)
		}
	}
}

func TestResolveConcurrentOnce(t *testing.T) {
	f := newFixture(t, "example.test")
	release := make(chan struct{})
	f.wk.set("example.test", func(w http.ResponseWriter, r *http.Request) {
		<-release
		w.Write([]byte(`{"m.server":"198.51.100.1"}`))
	})
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			res, err := f.r.Resolve(context.Background(), "example.test")
			if err == nil && res.Host != "198.51.100.1" {
				err = errors.New("bad host " + res.Host)
			}
			errs <- err
		})
	}
	// Give the goroutines time to join the flight, then release the fetch.
	time.Sleep(100 * time.Millisecond)
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := f.wk.count("example.test"); got != 1 {
		t.Errorf("%d well-known fetches, want 1", got)
	}
}

func TestResolveCallerCancel(t *testing.T) {
	f := newFixture(t, "example.test")
	release := make(chan struct{})
	f.wk.set("example.test", func(w http.ResponseWriter, r *http.Request) {
		<-release
		w.Write([]byte(`{"m.server":"198.51.100.1"}`))
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := f.r.Resolve(ctx, "example.test")
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled caller got %v", err)
	}
	// The shared resolution continues for the other callers.
	close(release)
	res, err := f.r.Resolve(context.Background(), "example.test")
	if err != nil || res.Step != StepDelegatedIPLiteral {
		t.Fatalf("after cancel: %+v, %v", res, err)
	}
	if got := f.wk.count("example.test"); got != 1 {
		t.Errorf("%d well-known fetches, want 1", got)
	}
}

func TestGuard(t *testing.T) {
	refusedAddrs := []string{"127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.0.1", "169.254.169.254",
		"0.0.0.0", "0.1.2.3", "100.64.0.1", "198.18.0.1", "224.0.0.1", "255.255.255.255", "240.0.0.1", "192.0.0.8",
		"::1", "::", "fe80::1", "fd12::1", "fc00::1", "ff02::1", "ff05::1", "::ffff:10.0.0.1", "::ffff:127.0.0.1",
		"64:ff9b::a00:1", "64:ff9b::7f00:1", "64:ff9b:1::1", "fe80::1%eth0"}
	allowedAddrs := []string{"1.1.1.1", "8.8.8.8", "198.51.100.1", "2001:4860::8888", "64:ff9b::808:808", "::ffff:8.8.8.8"}
	var g Guard
	for _, s := range refusedAddrs {
		a := netip.MustParseAddr(s)
		if g.Allowed(a) {
			t.Errorf("default guard allows %s", s)
		}
		if err := g.Check(a); !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("Check(%s) = %v", s, err)
		}
	}
	for _, s := range allowedAddrs {
		if err := g.Check(netip.MustParseAddr(s)); err != nil {
			t.Errorf("default guard refuses %s: %v", s, err)
		}
	}
	g.Allow = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	if !g.Allowed(netip.MustParseAddr("10.9.9.9")) || !g.Allowed(netip.MustParseAddr("::ffff:10.9.9.9")) {
		t.Error("allow-list not honoured")
	}
	if g.Allowed(netip.MustParseAddr("192.168.0.1")) {
		t.Error("allow-list opened more than its prefix")
	}
}

func TestGuardDialer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	var g Guard
	if _, err := g.DialContext(context.Background(), "tcp", ln.Addr().String()); !errors.Is(err, ErrForbiddenAddress) {
		t.Errorf("guarded dial to loopback: %v", err)
	}
	port := netip.MustParseAddrPort(ln.Addr().String()).Port()
	// The hook itself, as net.Dialer calls it after name resolution.
	if err := g.Control("tcp", "127.0.0.1:"+itoa(port), nil); !errors.Is(err, ErrForbiddenAddress) {
		t.Errorf("Control on loopback: %v", err)
	}
	if err := g.Control("tcp6", "[fe80::1%eth0]:443", nil); !errors.Is(err, ErrForbiddenAddress) {
		t.Errorf("Control on link-local with zone: %v", err)
	}
	if err := g.Control("tcp", "not an address", nil); !errors.Is(err, ErrForbiddenAddress) {
		t.Errorf("Control on garbage: %v", err)
	}
	if err := g.Control("tcp", "198.51.100.1:443", nil); err != nil {
		t.Errorf("Control on a public address: %v", err)
	}
	g.Allow = loopback()
	c, err := g.DialContext(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("allowed dial: %v", err)
	}
	c.Close()
	// Resolver.DialContext resolves through its DNS server and guards.
	f := newFixture(t)
	f.dns.AddA("inner.test", netip.MustParseAddr("127.0.0.1"))
	if _, err := f.r.DialContext(context.Background(), "tcp", "inner.test:"+itoa(port)); !errors.Is(err, ErrForbiddenAddress) {
		t.Errorf("resolver dial to inner name: %v", err)
	}
	f.r.Guard.Allow = loopback()
	c, err = f.r.DialContext(context.Background(), "tcp", "inner.test:"+itoa(port))
	if err != nil {
		t.Fatalf("resolver dial allowed: %v", err)
	}
	c.Close()
}

// loadWellKnownVectors reads testdata/wellknown/*.txt: a first line
// "expect: ok <m.server>", "expect: invalid" or "expect: invalid-server-name",
// then the body.
func loadWellKnownVectors(t testing.TB) map[string][2]string {
	t.Helper()
	files, err := filepath.Glob("testdata/wellknown/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no well-known vectors: %v", err)
	}
	out := make(map[string][2]string)
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		head, body, ok := strings.Cut(string(data), "\n")
		expect, ok2 := strings.CutPrefix(head, "expect: ")
		if !ok || !ok2 {
			t.Fatalf("%s: missing expect header", file)
		}
		out[file] = [2]string{expect, body}
	}
	return out
}

func TestParseWellKnown(t *testing.T) {
	for file, v := range loadWellKnownVectors(t) {
		expect, body := v[0], v[1]
		got, err := ParseWellKnown([]byte(body))
		switch {
		case strings.HasPrefix(expect, "ok "):
			if want := strings.TrimPrefix(expect, "ok "); err != nil || got != want {
				t.Errorf("%s: got %q, %v; want %q", file, got, err, want)
			}
		case expect == "invalid":
			if !errors.Is(err, ErrWellKnownInvalid) || errors.Is(err, ErrInvalidServerName) || got != "" {
				t.Errorf("%s: got %q, %v; want ErrWellKnownInvalid", file, got, err)
			}
		case expect == "invalid-server-name":
			if !errors.Is(err, ErrWellKnownInvalid) || !errors.Is(err, ErrInvalidServerName) || got != "" {
				t.Errorf("%s: got %q, %v; want ErrInvalidServerName", file, got, err)
			}
		default:
			t.Fatalf("%s: unknown expectation %q", file, expect)
		}
	}
}

func FuzzParseWellKnown(f *testing.F) {
	for _, v := range loadWellKnownVectors(f) {
		f.Add([]byte(v[1]))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		name, err := ParseWellKnown(body)
		if err != nil {
			if name != "" || !errors.Is(err, ErrWellKnownInvalid) {
				t.Fatalf("error %v with name %q or without sentinel", err, name)
			}
			return
		}
		// Accepted: the name must parse as a server name, and a body
		// rebuilt from it must give it back.
		if _, err := parseServerName(name); err != nil {
			t.Fatalf("accepted %q which does not parse: %v", name, err)
		}
		rebuilt, _ := json.Marshal(map[string]string{"m.server": name})
		again, err := ParseWellKnown(rebuilt)
		if err != nil || again != name {
			t.Fatalf("round trip of %q: %q, %v", name, again, err)
		}
	})
}

func TestGuardDialerChains(t *testing.T) {
	var called []string
	base := &net.Dialer{Control: func(network, address string, _ syscall.RawConn) error {
		called = append(called, address)
		return nil
	}}
	d := Guard{}.Dialer(base)
	if err := d.Control("tcp", "10.0.0.1:80", nil); !errors.Is(err, ErrForbiddenAddress) {
		t.Errorf("chained Control: %v", err)
	}
	if len(called) != 1 || called[0] != "10.0.0.1:80" {
		t.Errorf("base Control not run first: %v", called)
	}
	if base.Control == nil || d == base {
		t.Error("base dialer modified")
	}
	withCtx := &net.Dialer{ControlContext: func(context.Context, string, string, syscall.RawConn) error { return nil }}
	d = Guard{}.Dialer(withCtx)
	if err := d.ControlContext(context.Background(), "tcp", "127.0.0.1:80", nil); !errors.Is(err, ErrForbiddenAddress) {
		t.Errorf("chained ControlContext: %v", err)
	}
}

// TestDefaultWellKnownClientGuarded: without an injected client, the
// .well-known fetch resolves through the resolver's DNS server and the
// guard refuses a name that points inward.
func TestDefaultWellKnownClientGuarded(t *testing.T) {
	f := newFixture(t)
	f.r.HTTPClient = nil
	f.dns.AddA("example.test", netip.MustParseAddr("127.0.0.1"))
	f.dns.AddSRV("_matrix-fed._tcp.example.test", 1, 0, 8448, "target.test")
	f.dns.AddA("target.test", netip.MustParseAddr("192.0.2.1"))
	res, err := f.r.Resolve(context.Background(), "example.test")
	if err != nil {
		t.Fatal(err)
	}
	if res.Step != StepSRV || !errors.Is(res.WellKnownErr, ErrForbiddenAddress) {
		t.Errorf("step %s, WellKnownErr %v; want step 4 after a guarded well-known", res.Step, res.WellKnownErr)
	}
}
