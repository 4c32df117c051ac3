package serverdiscovery_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/gomatrixlib/gomatrixlib/serverdiscovery"
	"github.com/gomatrixlib/gomatrixlib/serverdiscovery/discoverytest"
)

func Example() {
	// An in-process DNS server stands in for the real one.
	dns, err := discoverytest.StartDNS()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer dns.Close()
	dns.AddA("matrix.example.test", netip.MustParseAddr("192.0.2.7"))

	r := &serverdiscovery.Resolver{DNSServer: dns.Addr}
	res, err := r.Resolve(context.Background(), "matrix.example.test:8443")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("step:", res.Step)
	fmt.Println("dial:", res.Addrs)
	fmt.Println("Host:", res.Host)
	fmt.Println("TLS name:", res.TLSServerName)

	// Names that point inward are refused unless allowed.
	_, err = r.Resolve(context.Background(), "10.0.0.1")
	fmt.Println(err)
	// Output:
	// step: 2
	// dial: [192.0.2.7:8443]
	// Host: matrix.example.test:8443
	// TLS name: matrix.example.test
	// serverdiscovery: 10.0.0.1 (step 1): serverdiscovery: forbidden address: 10.0.0.1 (and no allowed alternative)
}

func ExampleParseWellKnown() {
	name, err := serverdiscovery.ParseWellKnown([]byte(`{"m.server": "delegated.example.com:1234"}`))
	fmt.Println(name, err)
	_, err = serverdiscovery.ParseWellKnown([]byte(`{"m.server": "bad_name"}`))
	fmt.Println(errors.Is(err, serverdiscovery.ErrWellKnownInvalid), errors.Is(err, serverdiscovery.ErrInvalidServerName))
	// Output:
	// delegated.example.com:1234 <nil>
	// true true
}

func ExampleGuard() {
	var g serverdiscovery.Guard // the zero Guard refuses inward addresses
	for _, s := range []string{"198.51.100.7", "10.0.0.1", "::1", "::ffff:192.168.1.1"} {
		fmt.Println(s, g.Allowed(netip.MustParseAddr(s)))
	}
	// A private deployment opens its own range.
	g.Allow = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	fmt.Println("10.0.0.1 allowed:", g.Allowed(netip.MustParseAddr("10.0.0.1")))
	// Output:
	// 198.51.100.7 true
	// 10.0.0.1 false
	// ::1 false
	// ::ffff:192.168.1.1 false
	// 10.0.0.1 allowed: true
}
