package roomgen

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"maps"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/eventauth"
	"github.com/gomatrixlib/gomatrixlib/hashing"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
)

// ErrNotAllowed is wrapped by the error [Branch.Send] returns for an event
// the authorization rules reject against the branch's state.
var ErrNotAllowed = errors.New("roomgen: event not allowed")

// Server is the server name every generated user and event belongs to.
const Server = "example.org"

// Room holds every event generated for one room and serves them by event ID
// (it implements stateres.Provider).
type Room struct {
	Rules  roomversion.Rules
	RoomID string
	key    ed25519.PrivateKey
	byID   map[string]*event.PDU
	order  []*event.PDU
	ts     int64
}

// Branch is one line of history: its current state and its latest event.
type Branch struct {
	room  *Room
	state eventauth.StateMap
	prev  []string
	depth int64
}

// New starts a room: the create event by creator and creator's join. The
// timestamps start at 1 and grow by one for each event unless Branch.SendAt
// sets them.
func New(rules roomversion.Rules, creator string) (*Room, *Branch, error) {
	return NewTagged(rules, creator, "room")
}

// NewTagged is New for a room whose ID depends on tag: the local part of
// the room ID before room version 12, a create event content field from 12.
func NewTagged(rules roomversion.Rules, creator, tag string) (*Room, *Branch, error) {
	seed := make([]byte, ed25519.SeedSize)
	r := &Room{Rules: rules, key: ed25519.NewKeyFromSeed(seed), byID: map[string]*event.PDU{}}
	if !rules.RoomIDFromCreateEvent {
		r.RoomID = "!" + tag + ":" + Server
	}
	b := &Branch{room: r, state: eventauth.StateMap{}}
	content := map[string]any{"room_version": rules.ID}
	if !rules.CreatorFromSender {
		content["creator"] = creator
	}
	if rules.RoomIDFromCreateEvent && tag != "room" {
		content["org.example.tag"] = tag
	}
	if _, err := b.Send("m.room.create", ptr(""), creator, content); err != nil {
		return nil, nil, err
	}
	if _, err := b.Send("m.room.member", ptr(creator), creator, map[string]any{"membership": "join"}); err != nil {
		return nil, nil, err
	}
	return r, b, nil
}

func ptr(s string) *string { return &s }

// Events implements stateres.Provider.
func (r *Room) Events(_ context.Context, ids []string) ([]*event.PDU, error) {
	out := make([]*event.PDU, len(ids))
	for i, id := range ids {
		out[i] = r.byID[id]
	}
	return out, nil
}

// Event returns the event with the given ID, or nil.
func (r *Room) Event(id string) *event.PDU { return r.byID[id] }

// All returns every event in creation order.
func (r *Room) All() []*event.PDU { return r.order }

// Add records an event built elsewhere (for example parsed from a vector).
func (r *Room) Add(ev *event.PDU) {
	if _, ok := r.byID[ev.EventID()]; !ok {
		r.byID[ev.EventID()] = ev
		r.order = append(r.order, ev)
	}
}

// Fork returns a new branch with the same state and tip.
func (b *Branch) Fork() *Branch {
	return &Branch{room: b.room, state: maps.Clone(b.state), prev: append([]string(nil), b.prev...), depth: b.depth}
}

// State returns the branch's state as a map from key to event ID.
func (b *Branch) State() map[eventauth.StateKey]string {
	out := make(map[eventauth.StateKey]string, len(b.state))
	for k, ev := range b.state {
		out[k] = ev.EventID()
	}
	return out
}

// Send builds a state event on the branch (stateKey nil for a message
// event), checked against the branch's state; it fails with an error wrapping
// ErrNotAllowed if the rules reject it.
func (b *Branch) Send(typ string, stateKey *string, sender string, content any) (*event.PDU, error) {
	b.room.ts++
	return b.send(typ, stateKey, sender, content, b.room.ts, true)
}

// SendAt is Send with an explicit origin_server_ts.
func (b *Branch) SendAt(ts int64, typ string, stateKey *string, sender string, content any) (*event.PDU, error) {
	return b.send(typ, stateKey, sender, content, ts, true)
}

// Force is Send without the auth check (for events that later resolution
// must reject).
func (b *Branch) Force(typ string, stateKey *string, sender string, content any) (*event.PDU, error) {
	b.room.ts++
	return b.send(typ, stateKey, sender, content, b.room.ts, false)
}

func (b *Branch) send(typ string, stateKey *string, sender string, content any, ts int64, check bool) (*event.PDU, error) {
	r := b.room
	raw, err := json.Marshal(content)
	if err != nil {
		return nil, fmt.Errorf("roomgen: content: %w", err)
	}
	sk := ""
	if stateKey != nil {
		sk = *stateKey
	}
	var authIDs []string
	if typ != "m.room.create" {
		for _, ev := range b.state.Select(eventauth.AuthEventsNeeded(r.Rules, typ, sk, sender, raw)) {
			authIDs = append(authIDs, ev.EventID())
		}
	}
	bl := event.Builder{
		RoomID: r.RoomID, Type: typ, Sender: sender, StateKey: stateKey, Content: raw,
		PrevEvents: b.prev, AuthEvents: authIDs, Depth: b.depth + 1, OriginServerTS: ts,
	}
	if r.Rules.EventReferencesWithHashes {
		bl.ReferenceHashes = map[string][]byte{}
		for _, id := range append(append([]string(nil), b.prev...), authIDs...) {
			h, err := hashing.ReferenceHash(r.Rules, r.byID[id].JSON())
			if err != nil {
				return nil, fmt.Errorf("roomgen: reference hash of %s: %w", id, err)
			}
			bl.ReferenceHashes[id] = h
		}
	}
	ev, err := bl.Build(r.Rules, Server, "ed25519:gen", r.key)
	if err != nil {
		return nil, fmt.Errorf("roomgen: build %s: %w", typ, err)
	}
	if typ == "m.room.create" && r.RoomID == "" {
		r.RoomID = ev.RoomID()
		if r.RoomID == "" {
			r.RoomID = "!" + ev.EventID()[1:]
		}
	}
	if check {
		if err := eventauth.Check(ev, b.state); err != nil {
			return nil, fmt.Errorf("%w: %s by %s: %v", ErrNotAllowed, typ, sender, err)
		}
	}
	r.Add(ev)
	b.prev = []string{ev.EventID()}
	b.depth++
	if stateKey != nil {
		b.state.Add(ev)
	}
	return ev, nil
}

// Empty returns a room with no events, to fill with Add.
func Empty(rules roomversion.Rules) *Room {
	return &Room{Rules: rules, key: ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)), byID: map[string]*event.PDU{}}
}
