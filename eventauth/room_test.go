package eventauth

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/hashing"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
	"github.com/gomatrixlib/gomatrixlib/signing"
)

// testKey returns a deterministic signing key for a server name, so that
// test rooms are reproducible.
func testKey(server string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("eventauth test key " + server))
	return ed25519.NewKeyFromSeed(seed[:])
}

const testKeyID = "ed25519:test"

// identityServer is the server whose key signs third-party invites in tests.
const identityServer = "id.test"

// testRoom builds the events of one room in one room version: each new
// event cites the previous one as its prev event and its auth events as the
// selection algorithm picks them from the current state.
type testRoom struct {
	t      testing.TB
	rules  roomversion.Rules
	roomID string
	create *event.PDU
	state  StateMap
	last   *event.PDU
	depth  int64
	all    []*event.PDU
	// refs holds the reference hash of every event built, which room
	// versions 1-2 put next to cited IDs.
	refs map[string][]byte
	// readOnly rooms build events without recording their hashes.
	readOnly bool
}

func newTestRoom(t testing.TB, rules roomversion.Rules) *testRoom {
	return &testRoom{t: t, rules: rules, state: StateMap{}, refs: map[string][]byte{}}
}

// eventSpec is an event to build. Fields left zero take the room's
// defaults: the room ID, the previous event, auth events by selection.
type eventSpec struct {
	Type     string
	Sender   string
	StateKey *string
	Content  string
	Redacts  string
	// Prev and Auth override prev_events and auth_events when non-nil.
	Prev, Auth []string
	// RoomID overrides the room ID (for create events in versions with a
	// room_id, the default is "!room:" + the sender's server).
	RoomID string
	// Cosign lists other servers that also sign the event.
	Cosign []string
	// AddRoomID gives a create event a room_id even where the version
	// leaves it out.
	AddRoomID bool
	// Rejected lists auth events to treat as rejected (vectors only).
	Rejected []string
}

func sk(s string) *string { return &s }

// build makes a PDU from spec without adding it to the room.
func (r *testRoom) build(spec eventSpec) *event.PDU {
	r.t.Helper()
	ev, err := r.tryBuild(spec)
	if err != nil {
		r.t.Fatalf("room version %s: building %s event from %s: %v", r.rules.ID, spec.Type, spec.Sender, err)
	}
	return ev
}

// tryBuildQuiet is tryBuild reporting to t, without recording anything in
// the room (for fuzz functions, which must not use the *testing.F).
func (r *testRoom) tryBuildQuiet(t testing.TB, spec eventSpec) (*event.PDU, error) {
	c := *r
	c.t = t
	c.readOnly = true
	return c.tryBuild(spec)
}

// tryBuild makes a PDU from spec; the error is event.Parse's refusal.
func (r *testRoom) tryBuild(spec eventSpec) (*event.PDU, error) {
	r.t.Helper()
	content := spec.Content
	if content == "" {
		content = "{}"
	}
	content = r.expand(content)
	roomID := spec.RoomID
	if roomID == "" {
		roomID = r.roomID
		if spec.Type == typeCreate {
			roomID = "!room:" + domainOf(spec.Sender)
		}
	}
	prev := spec.Prev
	if prev == nil {
		prev = []string{}
		if r.last != nil {
			prev = []string{r.last.EventID()}
		}
	}
	auth := spec.Auth
	if auth == nil {
		auth = []string{}
		if spec.Type != typeCreate {
			stateKey := ""
			if spec.StateKey != nil {
				stateKey = *spec.StateKey
			}
			for _, ev := range r.state.Select(AuthEventsNeeded(r.rules, spec.Type, stateKey, spec.Sender, []byte(content))) {
				auth = append(auth, ev.EventID())
			}
		}
	}
	r.depth++
	b := event.Builder{
		RoomID:         roomID,
		Type:           spec.Type,
		Sender:         spec.Sender,
		StateKey:       spec.StateKey,
		Content:        []byte(content),
		PrevEvents:     prev,
		AuthEvents:     auth,
		Depth:          r.depth,
		OriginServerTS: 1700000000000 + r.depth,
		Redacts:        spec.Redacts,
	}
	if r.rules.EventReferencesWithHashes {
		b.ReferenceHashes = map[string][]byte{}
		for _, id := range append(append([]string(nil), prev...), auth...) {
			h, ok := r.refs[id]
			if !ok {
				// An ID this room never built (a vector's made-up
				// reference): any hash will do for the rules.
				h = make([]byte, 32)
			}
			b.ReferenceHashes[id] = h
		}
	}
	server := domainOf(spec.Sender)
	ev, err := b.Build(r.rules, server, testKeyID, testKey(server))
	if err != nil {
		return nil, err
	}
	if spec.AddRoomID {
		raw, err := sjson.SetBytes(ev.JSON(), "room_id", "!room:"+server)
		if err == nil {
			raw, err = signing.SignEvent(r.rules, server, testKeyID, testKey(server), raw)
		}
		if err == nil {
			ev, err = event.Parse(r.rules, raw)
		}
		if err != nil {
			return nil, err
		}
	}
	if len(spec.Cosign) > 0 {
		raw := ev.JSON()
		for _, s := range spec.Cosign {
			raw, err = signing.SignEvent(r.rules, s, testKeyID, testKey(s), raw)
			if err != nil {
				r.t.Fatalf("cosigning by %s: %v", s, err)
			}
		}
		ev, err = event.Parse(r.rules, raw)
		if err != nil {
			return nil, err
		}
	}
	h, err := hashing.ReferenceHash(r.rules, ev.JSON())
	if err != nil {
		r.t.Fatalf("reference hash: %v", err)
	}
	if !r.readOnly {
		r.refs[ev.EventID()] = h
	}
	return ev, nil
}

// add records ev as accepted: it becomes the last event and, for a state
// event, part of the current state.
func (r *testRoom) add(ev *event.PDU) {
	if ev.Type() == typeCreate && r.create == nil {
		r.create = ev
		if r.rules.RoomIDFromCreateEvent {
			r.roomID = "!" + ev.EventID()[1:]
		} else {
			r.roomID = ev.RoomID()
		}
	}
	r.state.Add(ev)
	r.last = ev
	r.all = append(r.all, ev)
}

// expand replaces the placeholders of a content template: "$room" is the
// room ID; "$idpub" the identity server's public key; a
// third_party_invite.signed object with "__sign": "good" or "bad" is signed
// by the identity server's key (or by an unrelated key) and the marker
// removed.
func (r *testRoom) expand(content string) string {
	content = strings.ReplaceAll(content, "$room", r.roomID)
	if lvl := gjson.Get(content, `users.\$creator`); lvl.Exists() {
		// "$creator" in users is the room creator: listed in versions
		// before privileged creators, left out from them on (where listing
		// a creator is rejected).
		var err error
		content, err = sjson.Delete(content, `users.\$creator`)
		if err != nil {
			r.t.Fatal(err)
		}
		if !r.rules.PrivilegedCreators && r.create != nil {
			creator := r.create.Sender()
			if !r.rules.CreatorFromSender {
				creator = gjson.GetBytes(r.create.Content(), "creator").Str
			}
			content, err = sjson.SetRaw(content, "users."+escapePath(creator), lvl.Raw)
			if err != nil {
				r.t.Fatal(err)
			}
		}
	}
	pub := testKey(identityServer).Public().(ed25519.PublicKey)
	content = strings.ReplaceAll(content, "$idpub", signing.EncodeBase64(pub))
	mark := gjson.Get(content, "third_party_invite.signed.__sign")
	if !mark.Exists() {
		return content
	}
	signed := gjson.Get(content, "third_party_invite.signed").Raw
	signed, err := sjson.Delete(signed, "__sign")
	if err != nil {
		r.t.Fatal(err)
	}
	key := testKey(identityServer)
	if mark.Str == "bad" {
		key = testKey("someone-else.test")
	}
	out, err := signing.SignJSON(identityServer, "ed25519:0", key, []byte(signed))
	if err != nil {
		r.t.Fatalf("signing third_party_invite.signed: %v", err)
	}
	content, err = sjson.SetRaw(content, "third_party_invite.signed", string(out))
	if err != nil {
		r.t.Fatal(err)
	}
	return content
}

// escapePath escapes a key for a gjson/sjson path.
func escapePath(k string) string {
	var b strings.Builder
	for _, c := range k {
		switch c {
		case '.', '*', '?', '\\', '|', '#', '@', '!', '=', '<', '>', '%', ':':
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// authEventsOf returns the events ev cites, looked up among the room's
// events.
func (r *testRoom) authEventsOf(ev *event.PDU) []*event.PDU {
	var out []*event.PDU
	for _, id := range ev.AuthEventIDs() {
		for _, x := range r.all {
			if x.EventID() == id {
				out = append(out, x)
				break
			}
		}
	}
	return out
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprint("test: ", err))
	}
	return string(b)
}
