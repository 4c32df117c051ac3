package discoverytest

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// TTL is the time to live, in seconds, of every record the server returns.
const TTL = 60

type question struct {
	name  string
	qtype uint16
}

// DNS is an in-process DNS server answering from a table. Its methods are
// safe for concurrent use; records may be added while it serves.
type DNS struct {
	// Addr is the "127.0.0.1:port" address the server listens on (UDP and
	// TCP), suitable as a resolver address.
	Addr string

	mu      sync.Mutex
	records map[question][]dns.RR
	rcodes  map[question]int
	names   map[string]bool
	queries map[question]int

	udp, tcp *dns.Server
}

// StartDNS starts a server on a free 127.0.0.1 port. Call [DNS.Close] when done.
func StartDNS() (*DNS, error) {
	s := &DNS{
		records: make(map[question][]dns.RR),
		rcodes:  make(map[question]int),
		names:   make(map[string]bool),
		queries: make(map[question]int),
	}
	var (
		pc  net.PacketConn
		ln  net.Listener
		err error
	)
	// Bind UDP on a free port, then TCP on the same port; retry if another
	// process holds the TCP side of that port.
	for range 20 {
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("discoverytest: listen udp: %w", err)
		}
		ln, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			break
		}
		pc.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("discoverytest: listen tcp: %w", err)
	}
	s.Addr = pc.LocalAddr().String()
	h := dns.HandlerFunc(s.serve)
	s.udp = &dns.Server{PacketConn: pc, Handler: h}
	s.tcp = &dns.Server{Listener: ln, Handler: h}
	var wg sync.WaitGroup
	wg.Add(2)
	s.udp.NotifyStartedFunc = wg.Done
	s.tcp.NotifyStartedFunc = wg.Done
	go s.udp.ActivateAndServe()
	go s.tcp.ActivateAndServe()
	wg.Wait()
	return s, nil
}

// NewDNS starts a server for the test tb and stops it when the test ends.
// It fails the test if the server cannot start.
func NewDNS(tb testing.TB) *DNS {
	tb.Helper()
	s, err := StartDNS()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// Close stops the server.
func (s *DNS) Close() error {
	return errors.Join(s.udp.Shutdown(), s.tcp.Shutdown())
}

func (s *DNS) add(rr dns.RR) {
	h := rr.Header()
	q := question{h.Name, h.Rrtype}
	s.mu.Lock()
	s.records[q] = append(s.records[q], rr)
	s.names[h.Name] = true
	s.mu.Unlock()
}

func hdr(name string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: dns.CanonicalName(name), Rrtype: t, Class: dns.ClassINET, Ttl: TTL}
}

// AddA adds address records for name: an A record for each IPv4 address and
// an AAAA record for each IPv6 address.
func (s *DNS) AddA(name string, addrs ...netip.Addr) {
	for _, a := range addrs {
		a = a.Unmap()
		if a.Is4() {
			s.add(&dns.A{Hdr: hdr(name, dns.TypeA), A: net.IP(a.AsSlice())})
		} else {
			s.add(&dns.AAAA{Hdr: hdr(name, dns.TypeAAAA), AAAA: net.IP(a.AsSlice())})
		}
	}
}

// AddSRV adds an SRV record. name is the full owner name, for example
// "_matrix-fed._tcp.example.test"; target "." means "service not available".
func (s *DNS) AddSRV(name string, priority, weight, port uint16, target string) {
	s.add(&dns.SRV{Hdr: hdr(name, dns.TypeSRV), Priority: priority, Weight: weight,
		Port: port, Target: dns.CanonicalName(target)})
}

// AddCNAME makes name an alias of target.
func (s *DNS) AddCNAME(name, target string) {
	s.add(&dns.CNAME{Hdr: hdr(name, dns.TypeCNAME), Target: dns.CanonicalName(target)})
}

// SetRcode makes questions for (name, qtype) fail with rcode, for example
// dns.RcodeServerFailure. qtype is a dns.Type* constant.
func (s *DNS) SetRcode(name string, qtype uint16, rcode int) {
	s.mu.Lock()
	s.rcodes[question{dns.CanonicalName(name), qtype}] = rcode
	s.mu.Unlock()
}

// Queries reports how many questions for (name, qtype) the server received.
func (s *DNS) Queries(name string, qtype uint16) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries[question{dns.CanonicalName(name), qtype}]
}

func (s *DNS) serve(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	m.RecursionAvailable = true
	if len(req.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	key := question{strings.ToLower(q.Name), q.Qtype}
	s.mu.Lock()
	s.queries[key]++
	if rc, ok := s.rcodes[key]; ok {
		s.mu.Unlock()
		m.Rcode = rc
		w.WriteMsg(m)
		return
	}
	if !s.names[key.name] {
		m.Rcode = dns.RcodeNameError
	}
	m.Answer = append(m.Answer, s.records[key]...)
	if key.qtype != dns.TypeCNAME && len(m.Answer) == 0 {
		for _, rr := range s.records[question{key.name, dns.TypeCNAME}] {
			m.Answer = append(m.Answer, rr)
			m.Answer = append(m.Answer, s.records[question{rr.(*dns.CNAME).Target, key.qtype}]...)
		}
	}
	s.mu.Unlock()
	w.WriteMsg(m)
}
