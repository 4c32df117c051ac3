// Package dnstest keeps the library's own tests on the DNS server that
// package serverdiscovery/discoverytest now publishes. Use discoverytest
// in new code.
package dnstest

import (
	"testing"

	"github.com/gomatrixlib/gomatrixlib/serverdiscovery/discoverytest"
)

// TTL is the time to live, in seconds, of every record the server returns.
const TTL = discoverytest.TTL

// Server is discoverytest.DNS.
type Server = discoverytest.DNS

// Start is discoverytest.StartDNS.
func Start() (*Server, error) { return discoverytest.StartDNS() }

// New is discoverytest.NewDNS.
func New(tb testing.TB) *Server { return discoverytest.NewDNS(tb) }
