// Package federationtest runs fake Matrix homeservers in the test process,
// for tests of code that talks federation: a homeserver's join, backfill
// and transaction handling, a bridge, a checker.
//
// A Server is an HTTPS server on 127.0.0.1 with its own server name and
// signing key. It serves /_matrix/key/v2/server (package keys) and every
// federation endpoint federation.Client knows (see the Endpoint constants),
// plus event_auth. Every federation request must carry a valid X-Matrix
// signature, checked by federation.Authenticator, the library's own
// middleware; the server records each authenticated request (Requests,
// Await) for assertions.
//
// Each endpoint answers by default from the server's rooms, built with
// package roomtest (see Server.Default for what each answers): a make_join
// gets a template from the room's main branch, a send_join is verified and
// received into the room and answered with the state and auth chain, a
// transaction's PDUs are verified and received one by one, /state,
// /state_ids, /event, /event_auth, /backfill and /get_missing_events read
// the room's events. Handle replaces an endpoint's answer with the test's
// own Handler, which may start from Default and spoil it: hostile answers
// are one function away. Several servers may share a room: each answers
// from it and each sees what the others received.
//
// # Reaching the servers
//
// A Network is a DNS server, a certificate authority and a .well-known
// site (package serverdiscovery/discoverytest) plus a keyring; each Server
// registers its name there with an SRV record. The code under test reaches
// the fake servers through the network's Resolver, Transport or HTTPClient
// (the one option to set: serverdiscovery.Transport's Resolver and
// TLSConfig, or an HTTP client), FederationClient, or KeyFetcher for
// package keys. The fake servers verify the requests of the server under
// test with the keys in Network.Keys (add them with Keys.AddPublic) or by
// fetching them from it. For the fake servers to reach the server under test
// (key fetches, Server.SendPDUs, Server.Client), register its name and
// address with Network.Register and serve it with Network.CA.ServerTLS().
//
//	room := roomtest.New(t, roomtest.Options{Creator: "@alice:remote.test"})
//	remote := federationtest.New(t, federationtest.Options{Name: "remote.test", Rooms: []*roomtest.Room{room}})
//	client := remote.Network.FederationClient("hs.test", nil) // the code under test's client
//	tmpl, err := client.MakeJoin(ctx, "remote.test", room.ID, "@bob:hs.test", []string{room.Rules.ID})
//
// Everything listens on 127.0.0.1 only; the keys are roomtest's public
// test keys. Not for production.
package federationtest
