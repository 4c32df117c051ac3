package discoverytest_test

import (
	"fmt"
	"net/netip"

	"github.com/miekg/dns"

	"github.com/gomatrixlib/gomatrixlib/serverdiscovery/discoverytest"
)

func ExampleDNS() {
	s, err := discoverytest.StartDNS()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	s.AddSRV("_matrix-fed._tcp.example.test", 10, 0, 8448, "matrix.example.test")
	s.AddA("matrix.example.test", netip.MustParseAddr("192.0.2.7"))

	m := new(dns.Msg)
	m.SetQuestion("_matrix-fed._tcp.example.test.", dns.TypeSRV)
	r, err := dns.Exchange(m, s.Addr)
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := r.Answer[0].(*dns.SRV)
	fmt.Println(srv.Target, srv.Port)
	// Output: matrix.example.test. 8448
}
