package serverdiscovery

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// Guard decides which IP addresses outbound federation traffic may reach.
// The zero Guard refuses loopback, private (RFC 1918, RFC 4193),
// link-local, multicast and unspecified addresses, plus the IPv4
// "this network" (0.0.0.0/8), shared address space (100.64.0.0/10),
// IETF protocol assignments (192.0.0.0/24), benchmarking (198.18.0.0/15)
// and reserved/broadcast (240.0.0.0/4) ranges, and NAT64 addresses that
// embed any of those. IPv4-mapped IPv6 addresses are judged as IPv4.
// Addresses inside a prefix of Allow are always permitted.
type Guard struct {
	// Allow lists prefixes that are permitted even though they are
	// refused by default, e.g. 127.0.0.0/8 for tests or 10.0.0.0/8 for a
	// private deployment. Allowing 0.0.0.0/0 and ::/0 turns the guard off.
	Allow []netip.Prefix
}

var refusedV4 = [...]netip.Prefix{
	netip.PrefixFrom(netip.AddrFrom4([4]byte{0, 0, 0, 0}), 8),
	netip.PrefixFrom(netip.AddrFrom4([4]byte{100, 64, 0, 0}), 10),
	netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 0, 0, 0}), 24),
	netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, 0, 0}), 15),
	netip.PrefixFrom(netip.AddrFrom4([4]byte{240, 0, 0, 0}), 4),
}

// nat64 is the well-known NAT64 prefix 64:ff9b::/96 (RFC 6052).
var nat64 = netip.PrefixFrom(netip.AddrFrom16([16]byte{0, 0x64, 0xff, 0x9b}), 96)

func refused(a netip.Addr) bool {
	a = a.WithZone("").Unmap()
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() ||
		a.IsMulticast() || a.IsUnspecified() {
		return true
	}
	if a.Is4() {
		for _, p := range refusedV4 {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	if nat64.Contains(a) {
		b := a.As16()
		return refused(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}))
	}
	// 64:ff9b:1::/48 is for local-use NAT64 (RFC 8215).
	b := a.As16()
	return b[0] == 0 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && b[4] == 0 && b[5] == 1
}

// Allowed reports whether a may be dialled.
func (g Guard) Allowed(a netip.Addr) bool {
	a = a.WithZone("")
	for _, p := range g.Allow {
		if p.Contains(a) || p.Contains(a.Unmap()) {
			return true
		}
	}
	return !refused(a)
}

// Check returns nil if a may be dialled, else an error wrapping
// [ErrForbiddenAddress].
func (g Guard) Check(a netip.Addr) error {
	if g.Allowed(a) {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrForbiddenAddress, a)
}

// Control is a [net.Dialer] Control function that refuses connections to
// addresses the guard does not allow. It runs after name resolution, just
// before connect, so it also catches names that resolve inward (DNS
// rebinding). Errors wrap [ErrForbiddenAddress].
func (g Guard) Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot parse %q", ErrForbiddenAddress, address)
	}
	return g.Check(ap.Addr())
}

// Dialer returns a copy of base (nil: a zero net.Dialer) whose Control
// enforces the guard after any Control base already had.
func (g Guard) Dialer(base *net.Dialer) *net.Dialer {
	d := &net.Dialer{}
	if base != nil {
		*d = *base
	}
	if prevCtx := d.ControlContext; prevCtx != nil {
		d.ControlContext = func(ctx context.Context, network, address string, c syscall.RawConn) error {
			if err := prevCtx(ctx, network, address, c); err != nil {
				return err
			}
			return g.Control(network, address, c)
		}
		return d
	}
	prev := d.Control
	d.Control = func(network, address string, c syscall.RawConn) error {
		if prev != nil {
			if err := prev(network, address, c); err != nil {
				return err
			}
		}
		return g.Control(network, address, c)
	}
	return d
}

// DialContext dials address with the guard enforced at connect time; a
// drop-in for [net.Transport]-style DialContext fields.
func (g Guard) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return g.Dialer(nil).DialContext(ctx, network, address)
}

// filter returns the allowed addresses, or an error wrapping
// ErrForbiddenAddress if there were addresses and none is allowed.
func (g Guard) filter(addrs []netip.AddrPort) ([]netip.AddrPort, error) {
	out := addrs[:0:0]
	var first netip.Addr
	for _, ap := range addrs {
		if g.Allowed(ap.Addr()) {
			out = append(out, ap)
		} else if !first.IsValid() {
			first = ap.Addr()
		}
	}
	if len(out) == 0 && first.IsValid() {
		return nil, fmt.Errorf("%w: %s (and no allowed alternative)", ErrForbiddenAddress, first)
	}
	return out, nil
}
