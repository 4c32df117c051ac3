package serverdiscovery

import (
	"context"
	"net/netip"
	"testing"
	"time"
)

// BenchmarkResolveCached measures Resolve when the Result is cached (the
// path every federation request through Transport takes).
func BenchmarkResolveCached(b *testing.B) {
	f := newFixture(b)
	f.r.ResultTTL = time.Hour
	f.dns.AddSRV("_matrix-fed._tcp.example.test", 1, 0, 8443, "target.test")
	f.dns.AddA("target.test", netip.MustParseAddr("192.0.2.1"))
	ctx := context.Background()
	if _, err := f.r.Resolve(ctx, "example.test"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.r.Resolve(ctx, "example.test"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGuardAllowed measures the address check run on every dial.
func BenchmarkGuardAllowed(b *testing.B) {
	g := Guard{Allow: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}}
	addrs := []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("10.2.3.4")}
	b.ReportAllocs()
	for b.Loop() {
		for _, a := range addrs {
			g.Allowed(a)
		}
	}
}
