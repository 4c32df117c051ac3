package server_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/server"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/testclient"
	"github.com/gomatrixlib/gomatrixlib/federation"
	"github.com/gomatrixlib/gomatrixlib/federation/federationtest"
	"github.com/gomatrixlib/gomatrixlib/roomtest"
	"github.com/gomatrixlib/gomatrixlib/serverdiscovery"
)

// hostileSetup starts our server as "hs.test" in a federationtest network
// with one fake server "remote.test" holding rooms of version 10, and
// returns a federation client that talks to our server as remote.test.
func hostileSetup(t *testing.T, rooms ...*roomtest.Room) (*server.Server, *federationtest.Server, *federation.Client) {
	t.Helper()
	network := federationtest.NewNetwork(t, rooms[0].Keys)
	remote := federationtest.New(t, federationtest.Options{Name: "remote.test", Rooms: rooms, Network: network})
	// A server in no room, whose keys our server can fetch.
	federationtest.New(t, federationtest.Options{Name: roomtest.ForgerServer, Network: network})
	addr := freeAddr(t)
	s, err := server.Start(server.Config{DataDir: t.TempDir(), ClientAddr: "127.0.0.1:0", FederationAddr: addr,
		ServerName: "hs.test", BcryptCost: 4, Logger: testLogger(t), OutboundTransport: network.Transport()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	network.Register("hs.test", netip.MustParseAddrPort(addr))
	keyID, pub := s.SigningKey()
	network.Keys.AddPublic("hs.test", keyID, pub)
	// Our server's certificate is self-signed: the fake remote's client
	// skips its verification.
	hc := &http.Client{Transport: &serverdiscovery.Transport{Resolver: network.Resolver(), TLSConfig: &tls.Config{InsecureSkipVerify: true}}, Timeout: 30 * time.Second}
	as := &federation.Client{ServerName: "remote.test", Key: network.Keys.Key("remote.test"), HTTPClient: hc}
	return s, remote, as
}

func remoteRoom(t *testing.T, keys *roomtest.Keyring) *roomtest.Room {
	return roomtest.New(t, roomtest.Options{Version: "10", Creator: "@alice:remote.test", Keys: keys})
}

// TestHostileServer drives our server against a fake homeserver that
// misbehaves: a make_join template for another user, a send_join answer
// with a forged state event, transactions with forged PDUs, an oversized
// transaction and requests without X-Matrix authorization. Each is refused
// or dropped, and the room's state for our users stays correct.
func TestHostileServer(t *testing.T) {
	room := remoteRoom(t, nil)
	other := remoteRoom(t, room.Keys)
	s, remote, as := hostileSetup(t, room, other)
	bob := &testclient.Client{Base: "http://" + s.ClientAddr()}
	if err := bob.Register("bob", "secret-bob"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// A make_join template for another user: the join is refused and the
	// room is not stored.
	remote.Handle(federationtest.MakeJoin, func(req *federationtest.Request) federationtest.Response {
		resp := remote.Default(req)
		body, _ := resp.Body.(map[string]any)
		raw, _ := body["event"].(json.RawMessage)
		var ev map[string]any
		if json.Unmarshal(raw, &ev) != nil {
			t.Errorf("default make_join answer: %#v", resp.Body)
			return resp
		}
		ev["state_key"], ev["sender"] = "@mallory:remote.test", "@mallory:remote.test"
		body["event"] = ev
		return resp
	})
	r, err := bob.Do("POST", "/join/"+url.PathEscape(other.ID)+"?server_name=remote.test", map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Status == 200 {
		t.Fatalf("join with a template for another user succeeded: %s", r.Raw)
	}
	if r, _ := bob.Do("GET", "/rooms/"+url.PathEscape(other.ID)+"/joined_members", nil); r.Status == 200 {
		t.Fatalf("the room of the bad template is known: %s", r.Raw)
	}
	remote.Handle(federationtest.MakeJoin, remote.Default)

	// A send_join answer with a forged topic in the state: the join
	// succeeds without it.
	forged := room.Forge(roomtest.BadSignature, roomtest.Event{Type: "m.room.topic", Sender: room.Creator(),
		StateKey: roomtest.Str(""), Content: `{"topic":"evil"}`})
	remote.Handle(federationtest.SendJoin, func(req *federationtest.Request) federationtest.Response {
		resp := remote.Default(req)
		if body, ok := resp.Body.(*federationtest.SendJoinResponse); ok {
			body.State = append(body.State, forged.JSON)
		}
		return resp
	})
	if _, err := bob.MustOK("POST", "/join/"+url.PathEscape(room.ID)+"?server_name=remote.test", map[string]any{}); err != nil {
		t.Fatal(err)
	}
	if err := joinedOn(bob, room.ID, "@alice:remote.test"); err != nil {
		t.Fatal(err)
	}
	if r, _ := bob.Do("GET", "/rooms/"+url.PathEscape(room.ID)+"/state/m.room.topic", nil); r.Status != 404 {
		t.Fatalf("forged topic in our state: %d %s", r.Status, r.Raw)
	}

	// A transaction with a good message and forged ones: per-PDU errors,
	// only the good one reaches bob.
	good, err := room.Send(roomtest.Event{Type: "m.room.message", Sender: room.Creator(), Content: `{"msgtype":"m.text","body":"hello"}`})
	if err != nil {
		t.Fatal(err)
	}
	badSig := room.Forge(roomtest.BadSignature, roomtest.Event{Type: "m.room.message", Sender: room.Creator(), Content: `{"msgtype":"m.text","body":"bad sig"}`})
	foreign := room.Forge(roomtest.ForeignSender, roomtest.Event{Type: "m.room.message", Sender: room.Creator(), Content: `{"msgtype":"m.text","body":"foreign"}`})
	notMember, err := room.Build(roomtest.Event{Type: "m.room.message", Sender: "@eve:remote.test", Content: `{"msgtype":"m.text","body":"not in room"}`, Unchecked: true})
	if err != nil {
		t.Fatal(err)
	}
	// prev_events that never resolve: the fake server knows them no more
	// than we do, so get_missing_events and state_ids give nothing.
	orphan, err := room.Build(roomtest.Event{Type: "m.room.message", Sender: room.Creator(), Content: `{"msgtype":"m.text","body":"orphan"}`,
		PrevEvents: []string{"$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}, Unchecked: true})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	results, err := as.SendTransaction(ctx, "hs.test", "txn-1", federation.Transaction{Origin: "remote.test", OriginServerTS: time.Now().UnixMilli(),
		PDUs: []json.RawMessage{good.JSON(), badSig.JSON, foreign.JSON, notMember.JSON(), orphan.JSON()}})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 45*time.Second {
		t.Errorf("the transaction took %s", d)
	}
	if e := string(results[good.EventID()]); e != "{}" {
		t.Errorf("good PDU: %s", e)
	}
	for name, id := range map[string]string{"bad signature": forgedID(t, room, badSig), "foreign sender": forgedID(t, room, foreign), "not a member": notMember.EventID(), "unresolvable prev_events": orphan.EventID()} {
		var res struct {
			Error string `json:"error"`
		}
		if err := json.Unmarshal(results[id], &res); err != nil || res.Error == "" {
			t.Errorf("%s: no error in the result: %s", name, results[id])
		}
	}
	// The same transaction again: the same answer, nothing processed twice.
	again, err := as.SendTransaction(ctx, "hs.test", "txn-1", federation.Transaction{Origin: "remote.test", OriginServerTS: time.Now().UnixMilli()})
	if err != nil || len(again) != len(results) {
		t.Fatalf("repeated transaction: %v %v", again, err)
	}
	eventually(t, 10*time.Second, "the good message in bob's timeline", func() error {
		ids, err := bob.AllMessagesSince(room.ID, "")
		if err != nil {
			return err
		}
		if !slices.Contains(ids, good.EventID()) {
			return errors.New("not yet")
		}
		for _, id := range []string{forgedID(t, room, badSig), forgedID(t, room, foreign), notMember.EventID()} {
			if slices.Contains(ids, id) {
				return fmt.Errorf("forged event %s in the timeline", id)
			}
		}
		return nil
	})
	if rejected, _ := s.FederationStats(); rejected < 4 {
		t.Errorf("%d PDUs counted as refused, want at least 4", rejected)
	}

	// 51 PDUs: the whole transaction is refused.
	many := make([]json.RawMessage, 51)
	for i := range many {
		many[i] = good.JSON()
	}
	_, err = as.SendTransaction(ctx, "hs.test", "txn-big", federation.Transaction{Origin: "remote.test", OriginServerTS: time.Now().UnixMilli(), PDUs: many})
	var fe *federation.Error
	if !errors.As(err, &fe) || fe.Status != 400 {
		t.Fatalf("51 PDUs: %v", err)
	}

	// No X-Matrix authorization: 401 before any handler.
	req, _ := http.NewRequest("PUT", "https://hs.test/_matrix/federation/v1/send/x", nil)
	resp, err := as.HTTPClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("unauthenticated /send: %d", resp.StatusCode)
	}
	// Reads of a room by a server with no user in it are refused.
	stranger := &federation.Client{ServerName: roomtest.ForgerServer, Key: room.Keys.Key(roomtest.ForgerServer), HTTPClient: as.HTTPClient}
	_, err = stranger.StateIDs(ctx, "hs.test", room.ID, good.EventID())
	if !errors.As(err, &fe) || fe.Status != 403 {
		t.Fatalf("state_ids by a server not in the room: %v", err)
	}
}

func forgedID(t *testing.T, room *roomtest.Room, f *roomtest.Forged) string {
	t.Helper()
	p, err := event.Parse(room.Rules, f.JSON)
	if err != nil {
		t.Fatal(err)
	}
	return p.EventID()
}
