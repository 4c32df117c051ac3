package serverdiscovery

import (
	"context"
	"errors"
	"net/netip"
	"testing"
)

// embeddings returns the IPv6 forms that carry the IPv4 address v4:
// IPv4-mapped, IPv4-compatible, 6to4, NAT64 (64:ff9b::/96) and Teredo
// (as the client's obfuscated address and as the server's).
func embeddings(v4 netip.Addr) map[string]netip.Addr {
	b := v4.As4()
	form := func(prefix []byte, at int, bytes [4]byte, tail ...byte) netip.Addr {
		var a [16]byte
		copy(a[:], prefix)
		copy(a[at:], bytes[:])
		copy(a[at+4:], tail)
		return netip.AddrFrom16(a)
	}
	inv := [4]byte{^b[0], ^b[1], ^b[2], ^b[3]}
	return map[string]netip.Addr{
		"mapped":        netip.AddrFrom16(netip.AddrFrom4(b).As16()),
		"compatible":    form(nil, 12, b),
		"6to4":          form([]byte{0x20, 0x02}, 2, b, 0, 0, 0, 0, 0, 0, 0, 1),
		"NAT64":         form([]byte{0, 0x64, 0xff, 0x9b}, 12, b),
		"Teredo client": form([]byte{0x20, 0x01, 0, 0, 8, 8, 8, 8, 0x80, 0, 0xf2, 0x27}, 12, inv),
		"Teredo server": form([]byte{0x20, 0x01, 0, 0}, 4, b, 0x80, 0, 0xf2, 0x27, 0xf7, 0xf7, 0xf7, 0xf7),
	}
}

// TestGuardRefusesIPv4EmbeddedInIPv6: every IPv6 form that carries an
// IPv4 address is judged by that IPv4 address, in Allowed and in Resolve
// (AAAA records and IP literals); the same forms of a public address
// stay allowed.
func TestGuardRefusesIPv4EmbeddedInIPv6(t *testing.T) {
	refusedV4 := []string{"127.0.0.1", "10.0.0.1", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
		"0.1.2.3", "192.0.0.8", "198.18.0.1", "224.0.0.1", "240.0.0.1", "255.255.255.255"}
	var g Guard
	for _, s := range refusedV4 {
		for form, a := range embeddings(netip.MustParseAddr(s)) {
			if g.Allowed(a) {
				t.Errorf("%s as %s (%s) allowed", s, form, a)
			}
		}
	}
	for _, s := range []string{"8.8.8.8", "1.1.1.1", "198.51.100.1"} {
		for form, a := range embeddings(netip.MustParseAddr(s)) {
			if !g.Allowed(a) {
				t.Errorf("public %s as %s (%s) refused", s, form, a)
			}
		}
	}
	// The examples, written out.
	for _, s := range []string{"::127.0.0.1", "::169.254.169.254", "::10.0.0.1", "2002:7f00:1::", "2002:a9fe:a9fe::1"} {
		if g.Allowed(netip.MustParseAddr(s)) {
			t.Errorf("%s allowed", s)
		}
	}

	f := newFixture(t)
	f.dns.AddA("compat.test", netip.MustParseAddr("::127.0.0.1"))
	f.dns.AddA("sixtofour.test", netip.MustParseAddr("2002:a9fe:a9fe::1"))
	f.dns.AddA("teredo.test", embeddings(netip.MustParseAddr("10.0.0.1"))["Teredo client"])
	f.dns.AddA("public.test", embeddings(netip.MustParseAddr("8.8.8.8"))["6to4"])
	for _, name := range []string{"compat.test:8448", "sixtofour.test:8448", "teredo.test:8448", "[::127.0.0.1]", "[::10.0.0.1]:8448", "[2002:7f00:1::]", "[2002:a9fe:a9fe::1]:443"} {
		res, err := f.r.Resolve(context.Background(), name)
		if !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("Resolve(%s) = %v, %v; want ErrForbiddenAddress", name, res, err)
		}
	}
	if res, err := f.r.Resolve(context.Background(), "public.test:8448"); err != nil || len(res.Addrs) != 1 {
		t.Errorf("Resolve(public.test) = %v, %v", res, err)
	}
}

// FuzzGuardEmbeddedIPv4: each IPv6 form carrying an IPv4 address is
// allowed exactly when that IPv4 address is.
func FuzzGuardEmbeddedIPv4(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "8.8.8.8", "10.0.0.1", "169.254.169.254", "0.0.0.0", "255.255.255.255"} {
		f.Add(netip.MustParseAddr(s).AsSlice())
	}
	var g Guard
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) != 4 {
			return
		}
		v4 := netip.AddrFrom4([4]byte(b))
		want := g.Allowed(v4)
		for form, a := range embeddings(v4) {
			if g.Allowed(a) != want {
				t.Errorf("%s allowed=%v, as %s (%s) allowed=%v", v4, want, form, a, !want)
			}
		}
	})
}
