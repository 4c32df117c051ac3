package serverdiscovery_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/gomatrixlib/gomatrixlib/internal/dnstest"
	"github.com/gomatrixlib/gomatrixlib/serverdiscovery"
)

func Example() {
	// An in-process DNS server stands in for the real one.
	dns, err := dnstest.Start()
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
