package federationtest_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/gomatrixlib/gomatrixlib/federation"
	"github.com/gomatrixlib/gomatrixlib/federation/federationtest"
	"github.com/gomatrixlib/gomatrixlib/keys"
	"github.com/gomatrixlib/gomatrixlib/roomtest"
	"github.com/gomatrixlib/gomatrixlib/signing"
)

// TestServerUnderTestBothWays: a server under test with its own key, its
// key ring fetching over the network, talks to a fake server both ways;
// each side learns the other's key by fetching it.
func TestServerUnderTestBothWays(t *testing.T) {
	t.Parallel()
	net := federationtest.NewNetwork(t, nil)
	room := roomtest.New(t, roomtest.Options{Creator: alice, Keys: net.Keys})
	fake := federationtest.New(t, federationtest.Options{Name: remote, Rooms: []*roomtest.Room{room}, Network: net})

	// The server under test: its key is not in the network's keyring.
	hsKey, err := signing.GenerateKey("ed25519:hs")
	if err != nil {
		t.Fatal(err)
	}
	ring := &keys.Ring{Sources: []keys.Source{net.KeyFetcher()}}
	origins := make(chan string, 1)
	mux := http.NewServeMux()
	mux.Handle(keys.ServerPath, &keys.Handler{ServerName: us, Keys: []*signing.Key{hsKey}})
	mux.Handle("/_matrix/federation/", (&federation.Authenticator{ServerName: us, Keys: ring}).Wrap(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			origin, _ := federation.OriginFromContext(r.Context())
			origins <- origin
			fmt.Fprint(w, `{"pdus":{}}`)
		})))
	hs := httptest.NewUnstartedServer(mux)
	hs.TLS = net.CA.ServerTLS()
	hs.StartTLS()
	t.Cleanup(hs.Close)
	net.Register(us, netip.MustParseAddrPort(hs.Listener.Addr().String()))

	ctx := context.Background()
	msg := room.Message(alice, "to the server under test")
	if _, err := fake.SendPDUs(ctx, us, msg); err != nil {
		t.Fatal(err)
	}
	if got := <-origins; got != remote {
		t.Fatalf("server under test saw origin %q", got)
	}
	c := net.FederationClient(us, hsKey)
	if _, err := c.Version(ctx, remote); err != nil {
		t.Fatalf("fake server refused the server under test: %v", err)
	}
	if reqs := fake.Requests(federationtest.Version); len(reqs) != 1 || reqs[0].Origin != us {
		t.Fatalf("recorded %+v", reqs)
	}
}
