package serverdiscovery

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
)

// TestResolveWithLookupNetIP: with LookupNetIP set, host names (here
// "localhost", which DNS does not know) are resolved through it, IPv4
// first, and its addresses still pass the guard.
func TestResolveWithLookupNetIP(t *testing.T) {
	f := newFixture(t)
	hosts := map[string][]netip.Addr{
		"localhost":  {netip.MustParseAddr("::1"), netip.MustParseAddr("127.0.0.1")},
		"inner.test": {netip.MustParseAddr("10.0.0.1")},
	}
	f.r.LookupNetIP = func(_ context.Context, network, host string) ([]netip.Addr, error) {
		if network != "ip" {
			t.Errorf("network %q", network)
		}
		if a, ok := hosts[host]; ok {
			return a, nil
		}
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	f.r.Guard.Allow = loopback()
	res, err := f.r.Resolve(context.Background(), "localhost:8448")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Addrs) != 2 || res.Addrs[0] != ap("127.0.0.1:8448") || res.Addrs[1] != ap("[::1]:8448") || res.Host != "localhost:8448" {
		t.Fatalf("localhost:8448: %+v", res)
	}
	if _, err := f.r.Resolve(context.Background(), "inner.test:8448"); !errors.Is(err, ErrForbiddenAddress) {
		t.Fatalf("inner.test: %v, want ErrForbiddenAddress", err)
	}
	if _, err := f.r.Resolve(context.Background(), "missing.test:8448"); !errors.Is(err, ErrNoAddress) {
		t.Fatalf("missing.test: %v, want ErrNoAddress", err)
	}
}
