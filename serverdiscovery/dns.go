package serverdiscovery

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// maxCNAMEChain bounds how many CNAME hops a host lookup follows.
const maxCNAMEChain = 8

// maxRecords bounds how many records of one answer are used.
const maxRecords = 32

func (r *Resolver) dnsServer() string {
	if r.DNSServer != "" {
		return r.DNSServer
	}
	if cfg, err := dns.ClientConfigFromFile("/etc/resolv.conf"); err == nil && len(cfg.Servers) > 0 {
		return netJoin(cfg.Servers[0], cfg.Port)
	}
	return "127.0.0.1:53"
}

func netJoin(host, port string) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]:" + port
	}
	return host + ":" + port
}

// query sends one question. It returns the answer section, nil for
// NXDOMAIN, and an error wrapping ErrDNS for other failures.
func (r *Resolver) query(ctx context.Context, name string, qtype uint16) ([]dns.RR, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = true
	timeout := r.timeout()
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = max(time.Until(dl), time.Millisecond)
	}
	c := &dns.Client{Net: "udp", Timeout: timeout}
	server := r.dnsServer()
	resp, _, err := c.ExchangeContext(ctx, m, server)
	if err == nil && resp.Truncated {
		c.Net = "tcp"
		resp, _, err = c.ExchangeContext(ctx, m, server)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s %s: %v", ErrDNS, dns.TypeToString[qtype], name, err)
	}
	switch resp.Rcode {
	case dns.RcodeSuccess:
		return resp.Answer, nil
	case dns.RcodeNameError:
		return nil, nil
	default:
		return nil, fmt.Errorf("%w: %s %s: %s", ErrDNS, dns.TypeToString[qtype], name, dns.RcodeToString[resp.Rcode])
	}
}

// noteTTL lowers *ttl to the smallest TTL of rrs; ttl may be nil.
func noteTTL(ttl *uint32, rrs []dns.RR) {
	if ttl == nil {
		return
	}
	for _, rr := range rrs {
		*ttl = min(*ttl, rr.Header().Ttl)
	}
}

// lookupHost resolves a hostname to addresses (IPv4 first, then IPv6),
// following CNAME chains. It lowers *ttl to the smallest TTL of the records
// used (ttl may be nil).
func (r *Resolver) lookupHost(ctx context.Context, host string, ttl *uint32) ([]netip.Addr, error) {
	if r.LookupNetIP != nil {
		return r.lookupNetIP(ctx, host)
	}
	var out []netip.Addr
	var firstErr error
	for _, qt := range [...]uint16{dns.TypeA, dns.TypeAAAA} {
		addrs, err := r.lookupType(ctx, host, qt, ttl)
		if err != nil && firstErr == nil {
			firstErr = err
		}
		out = append(out, addrs...)
	}
	if len(out) == 0 {
		if firstErr != nil {
			return nil, firstErr
		}
		return nil, fmt.Errorf("%w: %s", ErrNoAddress, host)
	}
	return out, nil
}

// lookupNetIP resolves host through r.LookupNetIP: at most maxRecords
// addresses of each family, IPv4 first, within the resolver's timeout.
func (r *Resolver) lookupNetIP(ctx context.Context, host string) ([]netip.Addr, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout())
	defer cancel()
	addrs, err := r.LookupNetIP(ctx, "ip", strings.TrimSuffix(host, "."))
	var v4, v6 []netip.Addr
	for _, a := range addrs {
		a = a.Unmap()
		switch {
		case a.Is4() && len(v4) < maxRecords:
			v4 = append(v4, a)
		case a.Is6() && len(v6) < maxRecords:
			v6 = append(v6, a)
		}
	}
	out := append(v4, v6...)
	if len(out) > 0 {
		return out, nil
	}
	var dnsErr *net.DNSError
	if err == nil || (errors.As(err, &dnsErr) && dnsErr.IsNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrNoAddress, host)
	}
	return nil, fmt.Errorf("%w: %s: %v", ErrDNS, host, err)
}

func (r *Resolver) lookupType(ctx context.Context, host string, qt uint16, ttl *uint32) ([]netip.Addr, error) {
	name := dns.CanonicalName(host)
	for range maxCNAMEChain {
		rrs, err := r.query(ctx, name, qt)
		if err != nil {
			return nil, err
		}
		noteTTL(ttl, rrs)
		var addrs []netip.Addr
		// Walk the chain inside this answer: records owned by name or by
		// a CNAME target reached from it.
		owners := map[string]bool{name: true}
		next := ""
		for range maxCNAMEChain {
			changed := false
			for _, rr := range rrs {
				if c, ok := rr.(*dns.CNAME); ok && owners[dns.CanonicalName(c.Hdr.Name)] && !owners[dns.CanonicalName(c.Target)] {
					owners[dns.CanonicalName(c.Target)] = true
					next = dns.CanonicalName(c.Target)
					changed = true
				}
			}
			if !changed {
				break
			}
		}
		for _, rr := range rrs {
			if !owners[dns.CanonicalName(rr.Header().Name)] || len(addrs) >= maxRecords {
				continue
			}
			switch v := rr.(type) {
			case *dns.A:
				if a, ok := netip.AddrFromSlice(v.A); ok {
					addrs = append(addrs, a.Unmap())
				}
			case *dns.AAAA:
				if a, ok := netip.AddrFromSlice(v.AAAA); ok {
					addrs = append(addrs, a)
				}
			}
		}
		if len(addrs) > 0 || next == "" {
			return addrs, nil
		}
		name = next // the resolver gave a CNAME without its target's records
	}
	return nil, fmt.Errorf("%w: %s: CNAME chain too long", ErrDNS, host)
}

// lookupSRV returns the SRV records of name in RFC 2782 order: ascending
// priority, and within one priority a weighted random order. A single
// record with target "." yields ErrServiceUnavailable. No records: nil, nil.
func (r *Resolver) lookupSRV(ctx context.Context, name string, ttl *uint32) ([]*dns.SRV, error) {
	rrs, err := r.query(ctx, name, dns.TypeSRV)
	if err != nil {
		return nil, err
	}
	noteTTL(ttl, rrs)
	var recs []*dns.SRV
	dot := false
	for _, rr := range rrs {
		if s, ok := rr.(*dns.SRV); ok && dns.CanonicalName(s.Hdr.Name) == dns.CanonicalName(name) {
			if s.Target == "." {
				dot = true
				continue
			}
			if len(recs) < maxRecords {
				recs = append(recs, s)
			}
		}
	}
	if len(recs) == 0 {
		if dot {
			return nil, fmt.Errorf("%w: %s", ErrServiceUnavailable, name)
		}
		return nil, nil
	}
	return orderSRV(recs, r.randN), nil
}

// orderSRV sorts by priority and orders each priority group by weighted
// random selection (RFC 2782). randN(n) returns a value in [0, n); nil
// means math/rand/v2.
func orderSRV(recs []*dns.SRV, randN func(n uint64) uint64) []*dns.SRV {
	if randN == nil {
		randN = rand.N[uint64]
	}
	slices.SortStableFunc(recs, func(a, b *dns.SRV) int { return cmp.Compare(a.Priority, b.Priority) })
	out := make([]*dns.SRV, 0, len(recs))
	for i := 0; i < len(recs); {
		j := i
		for j < len(recs) && recs[j].Priority == recs[i].Priority {
			j++
		}
		group := slices.Clone(recs[i:j])
		// RFC 2782: zero-weight records first, then running sums.
		slices.SortStableFunc(group, func(a, b *dns.SRV) int {
			return cmp.Compare(min(a.Weight, 1), min(b.Weight, 1))
		})
		for len(group) > 0 {
			var total uint64
			for _, s := range group {
				total += uint64(s.Weight)
			}
			pick := 0
			if total > 0 {
				n := randN(total + 1)
				var sum uint64
				for k, s := range group {
					sum += uint64(s.Weight)
					if sum >= n {
						pick = k
						break
					}
				}
			}
			out = append(out, group[pick])
			group = slices.Delete(group, pick, pick+1)
		}
		i = j
	}
	return out
}
