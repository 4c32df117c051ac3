// Package roomfix builds small signed rooms for the federation packages'
// tests: servers with deterministic keys, a key lookup over them, and a
// room whose events get their prev events, auth events and depth from
// the room's state. It is a test helper; the library's test kit (roomtest)
// is the general one.
package roomfix

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"sync"
	"time"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/eventauth"
	"github.com/gomatrixlib/gomatrixlib/hashing"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
	"github.com/gomatrixlib/gomatrixlib/signing"
)

// Key returns a deterministic signing key for server.
func Key(server string) *signing.Key {
	seed := sha256.Sum256([]byte("roomfix " + server))
	k, err := signing.NewKey("ed25519:1", ed25519.NewKeyFromSeed(seed[:]))
	if err != nil {
		panic(err)
	}
	return k
}

// Keys is a signing.KeyLookup that knows the Key of every server in it.
type Keys map[string]bool

// VerifyKey implements signing.KeyLookup.
func (k Keys) VerifyKey(_ context.Context, server, keyID string, _ time.Time) (ed25519.PublicKey, error) {
	if !k[server] || keyID != "ed25519:1" {
		return nil, fmt.Errorf("%w: %s %s", signing.ErrUnknownKey, server, keyID)
	}
	return Key(server).Public(), nil
}

// Room is a room under construction: its events, state and forward
// extremities. Safe for concurrent reads after construction.
type Room struct {
	Rules  roomversion.Rules
	ID     string
	State  eventauth.StateMap
	Events map[string]*event.PDU
	Latest []string
	// After is the state after each event.
	After map[string]eventauth.StateMap
	depth int64
	ts    int64
	mu    sync.Mutex
}

// New creates a room of version v by creator (a user ID) with a join, power
// levels giving creator 100, and join rules "public".
func New(v, creator string) (*Room, error) {
	rules, err := roomversion.Get(v)
	if err != nil {
		return nil, err
	}
	r := &Room{Rules: rules, State: eventauth.StateMap{}, Events: map[string]*event.PDU{}, After: map[string]eventauth.StateMap{}, ts: 1_700_000_000_000}
	content := `{"room_version":"` + v + `"}`
	if !rules.CreatorFromSender {
		content = fmt.Sprintf(`{"room_version":%q,"creator":%q}`, v, creator)
	}
	if !rules.RoomIDFromCreateEvent {
		r.ID = "!room:" + server(creator)
	}
	create, err := r.Add("m.room.create", creator, "", content)
	if err != nil {
		return nil, err
	}
	r.ID = create.RoomID()
	if _, err := r.Add("m.room.member", creator, creator, `{"membership":"join"}`); err != nil {
		return nil, err
	}
	pl := fmt.Sprintf(`{"users":{%q:100}}`, creator)
	if rules.PrivilegedCreators {
		pl = `{}`
	}
	if _, err := r.Add("m.room.power_levels", creator, "", pl); err != nil {
		return nil, err
	}
	if _, err := r.Add("m.room.join_rules", creator, "", `{"join_rule":"public"}`); err != nil {
		return nil, err
	}
	return r, nil
}

func server(user string) string {
	for i := range user {
		if user[i] == ':' {
			return user[i+1:]
		}
	}
	return ""
}

// Build makes an event of the room on top of its latest events, signed by
// the sender's server, without adding it. stateKey "-" means a message
// event.
func (r *Room) Build(typ, sender, stateKey, content string) (*event.PDU, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buildLocked(typ, sender, stateKey, content)
}

func (r *Room) buildLocked(typ, sender, stateKey, content string) (*event.PDU, error) {
	return r.buildOnLocked(r.State, r.Latest, Key(server(sender)), typ, sender, stateKey, content)
}

// BuildOn makes an event whose auth events come from state and whose prev
// events are prev, signed with key by the sender's server, without adding
// it.
func (r *Room) BuildOn(state eventauth.StateMap, prev []string, key *signing.Key, typ, sender, stateKey, content string) (*event.PDU, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buildOnLocked(state, prev, key, typ, sender, stateKey, content)
}

func (r *Room) buildOnLocked(state eventauth.StateMap, prev []string, k *signing.Key, typ, sender, stateKey, content string) (*event.PDU, error) {
	b := event.Builder{RoomID: r.ID, Type: typ, Sender: sender, Content: []byte(content),
		PrevEvents: append([]string(nil), prev...), Depth: r.depth + 1, ReferenceHashes: map[string][]byte{}}
	if stateKey != "-" {
		b.StateKey = &stateKey
	}
	r.ts++
	b.OriginServerTS = r.ts
	for _, sk := range eventauth.AuthEventsNeeded(r.Rules, typ, stateKey, sender, []byte(content)) {
		if ev := state[sk]; ev != nil {
			b.AuthEvents = append(b.AuthEvents, ev.EventID())
		}
	}
	for _, id := range append(append([]string(nil), b.PrevEvents...), b.AuthEvents...) {
		h, err := hashing.ReferenceHash(r.Rules, r.Events[id].JSON())
		if err != nil {
			return nil, err
		}
		b.ReferenceHashes[id] = h
	}
	return b.Build(r.Rules, server(sender), k.KeyID(), k.PrivateKey())
}

// Add builds an event, checks it against the room's state and adds it.
func (r *Room) Add(typ, sender, stateKey, content string) (*event.PDU, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ev, err := r.buildLocked(typ, sender, stateKey, content)
	if err != nil {
		return nil, err
	}
	if err := eventauth.Check(ev, r.State); err != nil {
		return nil, err
	}
	r.addLocked(ev)
	return ev, nil
}

// Put adds an event built elsewhere without checks.
func (r *Room) Put(ev *event.PDU) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.addLocked(ev)
}

func (r *Room) addLocked(ev *event.PDU) {
	r.Events[ev.EventID()] = ev
	r.State.Add(ev)
	after := make(eventauth.StateMap, len(r.State))
	for k, v := range r.State {
		after[k] = v
	}
	r.After[ev.EventID()] = after
	r.Latest = []string{ev.EventID()}
	r.depth = max(r.depth, ev.Depth())
}

// Lookup returns the room's events by ID (nil for unknown ones).
func (r *Room) Lookup(_ context.Context, ids []string) ([]*event.PDU, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*event.PDU, len(ids))
	for i, id := range ids {
		out[i] = r.Events[id]
	}
	return out, nil
}

// Copy returns a copy of the state.
func (r *Room) Copy() eventauth.StateMap {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(eventauth.StateMap, len(r.State))
	for k, v := range r.State {
		out[k] = v
	}
	return out
}
