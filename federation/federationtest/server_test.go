package federationtest_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/sjson"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/eventauth"
	"github.com/gomatrixlib/gomatrixlib/federation"
	"github.com/gomatrixlib/gomatrixlib/federation/federationtest"
	"github.com/gomatrixlib/gomatrixlib/hashing"
	"github.com/gomatrixlib/gomatrixlib/roomtest"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
	"github.com/gomatrixlib/gomatrixlib/signing"
)

const (
	remote = "remote.test"
	us     = "hs.test" // the server "under test"
	alice  = "@alice:" + remote
	bob    = "@bob:" + us
)

func setup(t *testing.T, version string) (*roomtest.Room, *federationtest.Server, *federation.Client) {
	t.Helper()
	room := roomtest.New(t, roomtest.Options{Version: version, Creator: alice})
	srv := federationtest.New(t, federationtest.Options{Name: remote, Rooms: []*roomtest.Room{room}})
	return room, srv, srv.Network.FederationClient(us, nil)
}

// joinFromTemplate does what a joining server does with a make_join
// template: fills it in and signs it.
func joinFromTemplate(t *testing.T, rules roomversion.Rules, key *signing.Key, tmpl json.RawMessage) *event.PDU {
	t.Helper()
	var resp struct {
		RoomVersion string          `json:"room_version"`
		Event       json.RawMessage `json:"event"`
	}
	if err := json.Unmarshal(tmpl, &resp); err != nil || resp.RoomVersion != rules.ID {
		t.Fatalf("make_join answer %s: %v", tmpl, err)
	}
	raw := []byte(resp.Event)
	var err error
	if rules.EventReferencesWithHashes {
		if raw, err = sjson.SetBytes(raw, "event_id", "$join1:"+us); err != nil {
			t.Fatal(err)
		}
	}
	if raw, err = signing.SignEvent(rules, us, key.KeyID(), key.PrivateKey(), raw); err != nil {
		t.Fatal(err)
	}
	ev, err := event.Parse(rules, raw)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// TestJoinEveryVersion: make_join and send_join against the default
// answers, in every room version; the answer's state and auth chain pass
// the library's checks and the room now has the join.
func TestJoinEveryVersion(t *testing.T) {
	t.Parallel()
	for _, rules := range roomversion.All() {
		t.Run("v"+rules.ID, func(t *testing.T) {
			t.Parallel()
			room, srv, c := setup(t, rules.ID)
			ctx := context.Background()
			if _, err := c.MakeJoin(ctx, remote, room.ID, bob, nil); err == nil && rules.ID != roomversion.All()[0].ID {
				t.Fatal("make_join without ver accepted a version other than 1")
			}
			tmpl, err := c.MakeJoin(ctx, remote, room.ID, bob, []string{rules.ID})
			if err != nil {
				t.Fatal(err)
			}
			join := joinFromTemplate(t, rules, c.Key, tmpl)
			raw, err := c.SendJoin(ctx, remote, room.ID, join.EventID(), join.JSON())
			if err != nil {
				t.Fatal(err)
			}
			var resp federationtest.SendJoinResponse
			if err := json.Unmarshal(raw, &resp); err != nil {
				t.Fatal(err)
			}
			if len(resp.State) != 4 || resp.Origin != remote {
				t.Fatalf("send_join state has %d events, origin %q", len(resp.State), resp.Origin)
			}
			byID := map[string]*event.PDU{}
			for _, r := range append(resp.State, resp.AuthChain...) {
				if err := signing.VerifyEvent(ctx, rules, r, srv.Network); err != nil {
					t.Fatalf("send_join event: %v", err)
				}
				ev, err := event.Parse(rules, r)
				if err != nil {
					t.Fatal(err)
				}
				byID[ev.EventID()] = ev
			}
			for _, ev := range byID {
				var auth []*event.PDU
				for _, a := range ev.AuthEventIDs() {
					auth = append(auth, byID[a])
				}
				if _, err := eventauth.CheckAuthEvents(ev, auth, eventauth.Options{Create: room.CreateEvent()}); err != nil {
					t.Fatalf("%s: %v", ev.Type(), err)
				}
			}
			if room.State().Member(bob) == nil || room.Last().EventID() != join.EventID() {
				t.Fatal("the room did not take the join")
			}
			reqs := srv.Requests(federationtest.MakeJoin, federationtest.SendJoin)
			if len(reqs) != 3 || reqs[2].Origin != us || reqs[2].EventID != join.EventID() || reqs[2].RoomID != room.ID {
				t.Fatalf("recorded %d requests: %+v", len(reqs), reqs)
			}
		})
	}
}

// TestReadEndpoints: the default answers of the read endpoints.
func TestReadEndpoints(t *testing.T) {
	t.Parallel()
	room, srv, c := setup(t, "")
	ctx := context.Background()
	room.Join(bob)
	m1 := room.Message(alice, "one")
	m2 := room.Message(bob, "two")
	var out struct {
		PDUs         []json.RawMessage `json:"pdus"`
		AuthChain    []json.RawMessage `json:"auth_chain"`
		PDUIDs       []string          `json:"pdu_ids"`
		AuthChainIDs []string          `json:"auth_chain_ids"`
		Events       []json.RawMessage `json:"events"`
	}
	get := func(raw json.RawMessage, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		out.PDUs, out.AuthChain, out.PDUIDs, out.AuthChainIDs, out.Events = nil, nil, nil, nil, nil
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatal(err)
		}
	}
	ev, err := c.GetEvent(ctx, remote, m1.EventID())
	if err != nil || string(ev) != string(m1.JSON()) {
		t.Fatalf("event: %v", err)
	}
	get(c.StateIDs(ctx, remote, room.ID, m2.EventID()))
	if len(out.PDUIDs) != 5 || len(out.AuthChainIDs) == 0 {
		t.Fatalf("state_ids: %d state, %d auth", len(out.PDUIDs), len(out.AuthChainIDs))
	}
	get(c.State(ctx, remote, room.ID, m2.EventID()))
	if len(out.PDUs) != 5 {
		t.Fatalf("state: %d", len(out.PDUs))
	}
	get(c.Backfill(ctx, remote, room.ID, []string{m2.EventID()}, 2))
	if len(out.PDUs) != 2 || string(out.PDUs[0]) != string(m2.JSON()) || string(out.PDUs[1]) != string(m1.JSON()) {
		t.Fatalf("backfill: %d events", len(out.PDUs))
	}
	get(c.GetMissingEvents(ctx, remote, room.ID, []string{room.All()[3].EventID()}, []string{m2.EventID()}, 10))
	if len(out.Events) != 2 { // bob's join and m1
		t.Fatalf("get_missing_events: %d", len(out.Events))
	}
	var auth struct {
		AuthChain []json.RawMessage `json:"auth_chain"`
	}
	if err := c.Do(ctx, remote, "GET", "/_matrix/federation/v1/event_auth/"+url.PathEscape(room.ID)+"/"+url.PathEscape(m2.EventID()), nil, nil, &auth); err != nil || len(auth.AuthChain) != len(room.AuthChain(m2.EventID())) {
		t.Fatalf("event_auth: %d events, %v", len(auth.AuthChain), err)
	}
	var prof map[string]string
	if err := c.Do(ctx, remote, "GET", "/_matrix/federation/v1/query/profile", map[string][]string{"user_id": {alice}}, nil, &prof); err != nil || prof["displayname"] != "alice" {
		t.Fatalf("profile: %v %v", prof, err)
	}
	if _, err := c.QueryProfile(ctx, remote, bob, ""); !isStatus(err, 404) {
		t.Fatalf("profile of another server's user: %v", err)
	}
	if _, err := c.QueryDirectory(ctx, remote, "#room:"+remote); !isStatus(err, 404) {
		t.Fatalf("unknown alias: %v", err)
	}
	srv.SetAlias("#room:"+remote, room.ID)
	if dir, err := c.QueryDirectory(ctx, remote, "#room:"+remote); err != nil || !strings.Contains(string(dir), room.ID) {
		t.Fatalf("alias: %s %v", dir, err)
	}
	if pr, err := c.PublicRooms(ctx, remote, 0, ""); err != nil || !strings.Contains(string(pr), room.ID) {
		t.Fatalf("publicRooms: %s %v", pr, err)
	}
	if v, err := c.Version(ctx, remote); err != nil || v.Server.Name != "federationtest" {
		t.Fatalf("version: %v", err)
	}
	for name, f := range map[string]func() (json.RawMessage, error){
		"devices":    func() (json.RawMessage, error) { return c.UserDevices(ctx, remote, alice) },
		"keys/query": func() (json.RawMessage, error) { return c.QueryKeys(ctx, remote, map[string][]string{alice: nil}) },
		"keys/claim": func() (json.RawMessage, error) { return c.ClaimKeys(ctx, remote, nil) },
	} {
		if _, err := f(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := c.GetEvent(ctx, remote, "$nope"); !isStatus(err, 404) {
		t.Fatalf("unknown event: %v", err)
	}
	if got := len(srv.Requests()); got != 16 {
		t.Fatalf("%d requests recorded, want 16", got)
	}
}

func isStatus(err error, status int) bool {
	var fe *federation.Error
	return errors.As(err, &fe) && fe.Status == status
}

// TestSendInviteAndHostile: transactions are verified PDU by PDU, invites
// countersigned, and requests without a valid X-Matrix signature refused
// before any handler runs.
func TestSendInviteAndHostile(t *testing.T) {
	t.Parallel()
	room, srv, c := setup(t, "")
	ctx := context.Background()
	room.Join(bob)
	good, err := room.Build(roomtest.Event{Type: "m.room.message", Sender: bob, Content: `{"body":"hi"}`})
	if err != nil {
		t.Fatal(err)
	}
	forged := room.Forge(roomtest.BadSignature, roomtest.Event{Type: "m.room.topic", Sender: alice, StateKey: roomtest.Str(""), Content: `{"topic":"x"}`})
	forgedEv, err := event.Parse(room.Rules, forged.JSON)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.SendTransaction(ctx, remote, "t1", federation.Transaction{Origin: us,
		PDUs: []json.RawMessage{good.JSON(), forged.JSON}})
	if err != nil {
		t.Fatal(err)
	}
	if string(res[good.EventID()]) != "{}" || !strings.Contains(string(res[forgedEv.EventID()]), "signature") {
		t.Fatalf("results: %s", res)
	}
	if room.Event(good.EventID()) == nil || room.Event(forgedEv.EventID()) != nil {
		t.Fatal("the room took the wrong events")
	}

	// An invite of a user of the fake server, into a room of ours.
	ours := roomtest.New(t, roomtest.Options{Creator: bob, Keys: srv.Network.Keys})
	inv, err := ours.Build(roomtest.Event{Type: "m.room.member", Sender: bob, StateKey: roomtest.Str(alice), Content: `{"membership":"invite"}`})
	if err != nil {
		t.Fatal(err)
	}
	signed, err := c.Invite(ctx, remote, ours.ID, inv.EventID(), ours.Rules.ID, inv.JSON(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := signing.VerifyJSON(remote, srv.Key.KeyID(), srv.Key.Public(), mustRedacted(t, ours.Rules, signed)); err != nil {
		t.Fatalf("invite not countersigned: %v", err)
	}

	// No signature, a signature by an unknown key, a wrong destination.
	n := len(srv.Requests())
	hc := srv.Network.HTTPClient()
	resp, err := hc.Get("https://" + remote + "/_matrix/federation/v1/version")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unsigned request: %d", resp.StatusCode)
	}
	stranger, _ := signing.GenerateKey("ed25519:x")
	bad := &federation.Client{ServerName: "stranger.test", Key: stranger, HTTPClient: hc}
	if _, err := bad.Version(ctx, remote); !isStatus(err, 401) {
		t.Fatalf("unknown origin key: %v", err)
	}
	if len(srv.Requests()) != n {
		t.Fatal("refused requests were recorded")
	}
	// The key server is served without authorization.
	if _, err := srv.Network.KeyFetcher().FetchKeys(ctx, remote, nil, time.Time{}); err != nil {
		t.Fatalf("key fetch: %v", err)
	}
}

func mustRedacted(t *testing.T, rules roomversion.Rules, raw []byte) []byte {
	t.Helper()
	red, err := hashing.Redact(rules, raw)
	if err != nil {
		t.Fatal(err)
	}
	return red
}

// TestHandlersAndSharedRoom: a test handler replaces a default, Await
// waits for requests, and two servers share one room.
func TestHandlersAndSharedRoom(t *testing.T) {
	t.Parallel()
	room := roomtest.New(t, roomtest.Options{Creator: alice})
	net := federationtest.NewNetwork(t, room.Keys)
	a := federationtest.New(t, federationtest.Options{Name: remote, Rooms: []*roomtest.Room{room}, Network: net})
	b := federationtest.New(t, federationtest.Options{Name: "other.test", Rooms: []*roomtest.Room{room}, Network: net})
	room.Join("@carol:other.test")
	c := net.FederationClient(us, nil)
	ctx := context.Background()

	b.Handle(federationtest.Backfill, func(req *federationtest.Request) federationtest.Response {
		return federationtest.Error(http.StatusTooManyRequests, "M_LIMIT_EXCEEDED", "slow down")
	})
	go c.Backfill(ctx, "other.test", room.ID, []string{room.Last().EventID()}, 5)
	got := b.Await(t, federationtest.Backfill, 1, 10*time.Second)
	if got[0].Origin != us || !slices.Equal(got[0].Query["v"], []string{room.Last().EventID()}) {
		t.Fatalf("recorded %+v", got[0])
	}
	if _, err := c.Backfill(ctx, "other.test", room.ID, []string{room.Last().EventID()}, 5); !isStatus(err, 429) {
		t.Fatalf("custom handler: %v", err)
	}
	b.Handle(federationtest.Backfill, nil)
	if _, err := c.Backfill(ctx, "other.test", room.ID, []string{room.Last().EventID()}, 5); err != nil {
		t.Fatalf("default restored: %v", err)
	}
	// An event the room gets through one server is served by the other.
	msg, _ := room.Build(roomtest.Event{Type: "m.room.message", Sender: "@carol:other.test", Content: `{"body":"x"}`})
	if res, err := b.SendPDUs(ctx, remote, msg); err != nil || string(res[msg.EventID()]) != "{}" {
		t.Fatalf("%s %v", res, err)
	}
	if ev, err := c.GetEvent(ctx, "other.test", msg.EventID()); err != nil || string(ev) != string(msg.JSON()) {
		t.Fatalf("shared room: %v", err)
	}
	if len(a.Requests(federationtest.Send)) != 1 || a.Requests(federationtest.Send)[0].Origin != "other.test" {
		t.Fatal("server a did not record b's transaction")
	}
}
