// Package serverdiscovery turns a Matrix server name into the addresses to
// dial, the HTTP Host header and the TLS server name, following the
// server-server API section "Resolving server names" (spec v1.19):
//
//  1. an IP literal is dialled directly (port as given, or 8448);
//  2. a hostname with an explicit port is looked up (CNAME/AAAA/A) and
//     dialled on that port;
//  3. otherwise https://<hostname>/.well-known/matrix/server is fetched;
//     a valid "m.server" is resolved by steps 3.1-3.5 (IP literal, explicit
//     port, SRV _matrix-fed._tcp, deprecated SRV _matrix._tcp, port 8448)
//     without a second .well-known;
//  4. otherwise SRV _matrix-fed._tcp.<hostname>, then
//  5. the deprecated SRV _matrix._tcp.<hostname>, then
//  6. the hostname on port 8448.
//
// Each [Result] records the step ([Step]), the addresses in SRV priority and
// weight order, the Host header and the TLS server name exactly as the spec
// defines them for that step: the certificate and Host always name the
// (delegated) hostname, never an SRV target. [Transport] is an
// http.RoundTripper that does all of this for federation requests.
//
// # Caching
//
// .well-known results are cached per [Resolver]: successful answers for the
// Cache-Control max-age or Expires lifetime (no-store/no-cache: not kept),
// 24 h when the response says nothing, never more than 48 h; failures for
// 2 minutes doubling on each consecutive failure up to 1 h. A whole
// [Result] is reused for up to Resolver.ResultTTL (1 minute), never longer
// than the smallest DNS TTL of the records used or the .well-known entry it
// relied on. Concurrent resolutions of one name share a single lookup.
//
// # Security
//
// A [Guard], on by default, refuses private, loopback, link-local,
// multicast, unspecified and other non-global addresses after DNS
// resolution, so a public name pointing inward is caught, and judges IPv6
// addresses that embed an IPv4 address (mapped, compatible, 6to4, NAT64,
// Teredo) by that address (see [Guard] for which forms and why); its
// Allow list opens prefixes for tests and private deployments. [Guard.Control] and
// [Resolver.DialContext] enforce the same rule at connect time for other
// HTTP clients. .well-known bodies are limited to 64 KiB, redirects to 5
// (loops and non-HTTPS targets refused), each fetch and DNS exchange to
// 10 s. Invalid .well-known responses never fail a resolution: as the spec
// requires, resolution continues with SRV, and [Result.WellKnownErr] says
// why (logged once per fetch through Logger).
//
// Out of scope: DNSSEC validation, happy-eyeballs dialling (addresses are
// tried in order, IPv4 first for A/AAAA lookups), and a DNS cache of its own
// (beyond Result reuse; point DNSServer at a caching resolver).
package serverdiscovery
