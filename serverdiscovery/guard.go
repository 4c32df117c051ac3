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
// and reserved/broadcast (240.0.0.0/4) ranges.
//
// IPv6 addresses that carry an IPv4 address are judged by that address,
// as Synapse's fix for CVE-2021-21392 does, so that no refused IPv4 range
// is reachable through an IPv6 spelling of it:
//   - IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d, the
//     deprecated form; :: and ::1 are refused as such): the last 32 bits;
//   - 6to4 (2002::/16): bits 16-47, the IPv4 address of the 6to4 router
//     the packets are sent to;
//   - NAT64 with the well-known prefix 64:ff9b::/96 (RFC 6052): the last
//     32 bits, which a NAT64 gateway on our path would dial; the
//     local-use prefix 64:ff9b:1::/48 (RFC 8215) is refused whole, since
//     where it puts the IPv4 address depends on the local prefix length;
//   - Teredo (2001::/32, RFC 4380): refused when its server address (bits
//     32-63) or its client address (the last 32 bits, inverted) is refused,
//     because a host that is itself a Teredo client sends UDP to both;
//     other Teredo addresses stay allowed, since through a public relay
//     they reach the client's public NAT address, not our network.
//
// Not covered: network-specific NAT64 prefixes (a deployment's own
// prefix, which the guard cannot know; filter it at the network) and
// ISATAP interface IDs, which reach the IPv4 network of whoever routes the
// prefix. Addresses
// inside a prefix of Allow are always permitted; Allow is matched against
// the address as given and, for IPv4-mapped addresses, as IPv4.
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
	b := a.As16()
	v4 := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{b[i], b[i+1], b[i+2], b[i+3]}) }
	switch {
	case b == [16]byte{12: b[12], 13: b[13], 14: b[14], 15: b[15]}: // IPv4-compatible ::/96
		return refused(v4(12))
	case nat64.Contains(a):
		return refused(v4(12))
	case b[0] == 0 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && b[4] == 0 && b[5] == 1:
		return true // 64:ff9b:1::/48, local-use NAT64 (RFC 8215)
	case b[0] == 0x20 && b[1] == 0x02: // 6to4 2002::/16
		return refused(v4(2))
	case b[0] == 0x20 && b[1] == 0x01 && b[2] == 0 && b[3] == 0: // Teredo 2001::/32
		client := netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]})
		return refused(v4(4)) || refused(client)
	}
	return false
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
