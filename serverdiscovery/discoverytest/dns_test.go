package discoverytest

import (
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

func exchange(t *testing.T, s *DNS, net, name string, qtype uint16) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: net}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	r, _, err := c.Exchange(m, s.Addr)
	if err != nil {
		t.Fatalf("exchange %s %s: %v", net, name, err)
	}
	return r
}

func TestServer(t *testing.T) {
	s := NewDNS(t)
	s.AddA("host.test", netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1"))
	s.AddSRV("_matrix-fed._tcp.example.test", 10, 5, 8443, "host.test")
	s.AddCNAME("alias.test", "host.test")
	s.SetRcode("broken.test", dns.TypeA, dns.RcodeServerFailure)

	for _, network := range []string{"udp", "tcp"} {
		r := exchange(t, s, network, "host.test", dns.TypeA)
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "192.0.2.1" {
			t.Errorf("%s A: %v", network, r)
		}
	}
	r := exchange(t, s, "udp", "HOST.test", dns.TypeAAAA)
	if len(r.Answer) != 1 || r.Answer[0].(*dns.AAAA).AAAA.String() != "2001:db8::1" {
		t.Errorf("AAAA (case-insensitive): %v", r)
	}
	r = exchange(t, s, "udp", "_matrix-fed._tcp.example.test", dns.TypeSRV)
	if len(r.Answer) != 1 {
		t.Fatalf("SRV: %v", r)
	}
	if srv := r.Answer[0].(*dns.SRV); srv.Port != 8443 || srv.Priority != 10 || srv.Weight != 5 || srv.Target != "host.test." {
		t.Errorf("SRV record: %v", srv)
	}
	r = exchange(t, s, "udp", "alias.test", dns.TypeA)
	if len(r.Answer) != 2 || r.Answer[0].Header().Rrtype != dns.TypeCNAME || r.Answer[1].(*dns.A).A.String() != "192.0.2.1" {
		t.Errorf("CNAME flattening: %v", r)
	}
	if r = exchange(t, s, "udp", "missing.test", dns.TypeA); r.Rcode != dns.RcodeNameError {
		t.Errorf("missing name: rcode %d, want NXDOMAIN", r.Rcode)
	}
	if r = exchange(t, s, "udp", "example.test", dns.TypeA); r.Rcode != dns.RcodeNameError {
		t.Errorf("name with only SRV below it: rcode %d, want NXDOMAIN", r.Rcode)
	}
	if r = exchange(t, s, "udp", "host.test", dns.TypeSRV); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 {
		t.Errorf("NODATA: %v", r)
	}
	if r = exchange(t, s, "udp", "broken.test", dns.TypeA); r.Rcode != dns.RcodeServerFailure {
		t.Errorf("SetRcode: rcode %d", r.Rcode)
	}
	if n := s.Queries("host.test", dns.TypeA); n != 2 {
		t.Errorf("Queries = %d, want 2", n)
	}
}
