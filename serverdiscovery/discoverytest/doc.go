// Package discoverytest provides the pieces a test needs to make Matrix
// server discovery (package serverdiscovery) and key fetching (package
// keys) reach servers on 127.0.0.1 without touching the network: an
// in-process DNS server (DNS), a certificate authority that issues
// certificates for any name (CA), and a .well-known/matrix/server site
// (WellKnown).
//
// DNS answers A, AAAA, SRV and CNAME questions from a table the test fills
// with AddA, AddSRV and AddCNAME. It behaves like a small recursive resolver:
// a question for a name that has a CNAME is answered with the CNAME record
// followed by the target's records of the asked type (one level, as real
// resolvers flatten chains). A name with no records at all gets NXDOMAIN; a
// name that has records of other types gets an empty NOERROR answer
// (NODATA). SetRcode forces an error code for one question, e.g. SERVFAIL. It
// listens on UDP and TCP on the same 127.0.0.1 port.
//
// Point a serverdiscovery.Resolver at them with its DNSServer (DNS.Addr),
// HTTPClient (WellKnown.Client) and Guard (allow 127.0.0.0/8) fields, and
// give serverdiscovery.Transport the CA's pool as TLSConfig.RootCAs;
// package federation/federationtest does this in one call (Network).
//
// Everything is for tests: the CA's key lives in memory and the servers
// listen on the loopback interface only.
package discoverytest
