package federationtest

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/gomatrixlib/gomatrixlib/federation"
	"github.com/gomatrixlib/gomatrixlib/keys"
	"github.com/gomatrixlib/gomatrixlib/roomtest"
	"github.com/gomatrixlib/gomatrixlib/serverdiscovery"
	"github.com/gomatrixlib/gomatrixlib/serverdiscovery/discoverytest"
	"github.com/gomatrixlib/gomatrixlib/signing"
)

// Network is what makes servers on 127.0.0.1 reachable by their server
// names: a DNS server, a certificate authority and a .well-known site
// (package serverdiscovery/discoverytest), and a keyring of the servers'
// signing keys. Fake servers register themselves in it; the code under test
// reaches them through Resolver, Transport, HTTPClient, FederationClient or
// KeyFetcher.
type Network struct {
	DNS       *discoverytest.DNS
	CA        *discoverytest.CA
	WellKnown *discoverytest.WellKnown
	// Keys holds the signing keys of the fake servers and of the servers
	// whose keys the test added (Keys.AddPublic for the server under
	// test).
	Keys *roomtest.Keyring

	once      sync.Once
	closeOnce sync.Once
	resolver  *serverdiscovery.Resolver
	transport *serverdiscovery.Transport
	ring      *keys.Ring
}

// NewNetwork starts a network for the test tb, stopped when the test
// ends; keyring nil means a new one. With a nil tb (Examples) errors panic
// and the caller calls Close.
func NewNetwork(tb TB, keyring *roomtest.Keyring) *Network {
	if tb != nil {
		tb.Helper()
	}
	n, err := startNetwork(keyring)
	if err != nil {
		fail(tb, err)
		return nil
	}
	if tb != nil {
		tb.Cleanup(n.Close)
	}
	return n
}

func startNetwork(keyring *roomtest.Keyring) (*Network, error) {
	ca, err := discoverytest.NewCA()
	if err != nil {
		return nil, fmt.Errorf("federationtest: %w", err)
	}
	dns, err := discoverytest.StartDNS()
	if err != nil {
		return nil, fmt.Errorf("federationtest: %w", err)
	}
	if keyring == nil {
		keyring = roomtest.NewKeyring()
	}
	return &Network{DNS: dns, CA: ca, WellKnown: discoverytest.StartWellKnown(ca), Keys: keyring}, nil
}

// Close stops the network's DNS server and .well-known site.
func (n *Network) Close() {
	n.closeOnce.Do(func() {
		n.init()
		n.transport.CloseIdleConnections()
		n.WellKnown.Close()
		n.DNS.Close()
	})
}

func (n *Network) init() {
	n.once.Do(func() {
		n.resolver = &serverdiscovery.Resolver{
			DNSServer:  n.DNS.Addr,
			HTTPClient: n.WellKnown.Client(),
			Guard:      serverdiscovery.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
			Timeout:    5 * time.Second,
		}
		n.transport = &serverdiscovery.Transport{Resolver: n.resolver, TLSConfig: n.CA.ClientTLS()}
		hc := &http.Client{Transport: n.transport, Timeout: 30 * time.Second}
		n.ring = &keys.Ring{Sources: []keys.Source{&keys.Fetcher{Client: hc}}, MinRefetch: -1}
	})
}

// Resolver returns the network's server name resolver: its DNS server, its
// .well-known site and loopback addresses allowed.
func (n *Network) Resolver() *serverdiscovery.Resolver { n.init(); return n.resolver }

// Transport returns a federation transport over Resolver that trusts the
// network's CA.
func (n *Network) Transport() *serverdiscovery.Transport { n.init(); return n.transport }

// HTTPClient returns an HTTP client over Transport: URLs name Matrix
// servers, as in https://remote.test/_matrix/key/v2/server.
func (n *Network) HTTPClient() *http.Client {
	return &http.Client{Transport: n.Transport(), Timeout: 30 * time.Second}
}

// FederationClient returns a federation client that sends requests as
// serverName, signed with key (nil: the keyring's key of serverName).
func (n *Network) FederationClient(serverName string, key *signing.Key) *federation.Client {
	if key == nil {
		key = n.Keys.Key(serverName)
	}
	return &federation.Client{ServerName: serverName, Key: key, HTTPClient: n.HTTPClient()}
}

// KeyFetcher returns a keys.Fetcher that fetches over the network.
func (n *Network) KeyFetcher() *keys.Fetcher { return &keys.Fetcher{Client: n.HTTPClient()} }

// Register makes serverName resolve to addr (a 127.0.0.1 port) through
// an SRV record, as a fake server does for itself.
func (n *Network) Register(serverName string, addr netip.AddrPort) {
	n.DNS.AddA(serverName, addr.Addr())
	n.DNS.AddSRV("_matrix-fed._tcp."+serverName, 10, 0, addr.Port(), serverName)
}

// VerifyKey implements signing.KeyLookup: the network's keyring first, then
// a key fetch from the server itself over the network.
func (n *Network) VerifyKey(ctx context.Context, server, keyID string, validAt time.Time) (ed25519.PublicKey, error) {
	pub, err := n.Keys.VerifyKey(ctx, server, keyID, validAt)
	if err == nil || !errors.Is(err, signing.ErrUnknownKey) {
		return pub, err
	}
	n.init()
	return n.ring.VerifyKey(ctx, server, keyID, validAt)
}
