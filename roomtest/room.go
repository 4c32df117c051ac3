package roomtest

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/eventauth"
	"github.com/gomatrixlib/gomatrixlib/id"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
	"github.com/gomatrixlib/gomatrixlib/signing"
)

// ErrNotAllowed is wrapped by the error of an event that the authorization
// rules reject against the branch's state (see [Event.Unchecked]).
var ErrNotAllowed = errors.New("roomtest: event not allowed by the auth rules")

// DefaultCreator creates rooms when [Options.Creator] is empty.
const DefaultCreator = "@alice:a.test"

// DefaultStartTS is the origin_server_ts of a room's create event when
// [Options.StartTS] is zero: 2026-01-01T00:00:00Z in milliseconds.
const DefaultStartTS = 1767225600000

// TB is the part of testing.TB the kit uses to fail a test; *testing.T,
// *testing.B and *testing.F satisfy it.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
}

// Options describe a new room. The zero value is a public room of the
// default room version created by DefaultCreator.
type Options struct {
	// Version is the room version; "" means roomversion.Default.
	Version string
	// Creator is the user who creates the room; "" means DefaultCreator.
	Creator string
	// JoinRule is the initial join rule; "" means "public".
	JoinRule string
	// CreateContent adds fields to the create event's content, such as
	// "m.federate": false.
	CreateContent map[string]any
	// Keys signs the events and answers key lookups; nil means a new
	// Keyring. Rooms that share a keyring share their servers' keys.
	Keys *Keyring
	// StartTS is the create event's origin_server_ts in milliseconds;
	// each later event gets one millisecond more. Zero: DefaultStartTS.
	StartTS int64
	// Bare leaves out the initial power levels and join rules events: the
	// room has only the create event and the creator's join.
	Bare bool
}

// Room is a test room: every event built for it, by event ID, and the
// state after each. The embedded Branch is the room's main line of
// history; Fork starts others. Room implements stateres.Provider,
// stateres.RejectionTracker (no event is rejected) and signing.KeyLookup.
// It is safe for concurrent use: fake servers may read it while a test
// adds events.
type Room struct {
	*Branch
	// Rules are the room version's rules.
	Rules roomversion.Rules
	// ID is the room ID.
	ID string
	// Keys holds the servers' signing keys.
	Keys *Keyring

	tb      TB
	creator string

	mu     sync.RWMutex
	byID   map[string]*record
	order  []*event.PDU
	create *event.PDU
	ts     int64
	refs   map[string][]byte // reference hashes, room versions 1-2
}

type record struct {
	ev            *event.PDU
	before, after *snapshot
}

// New creates a room as opts says: the create event, the creator's join,
// power levels (the creator at 100, kick, ban and redact at 50, state at
// 50, invite 0; from room version 12 the creator is privileged instead)
// and the join rules. A failure fails tb; with a nil tb it panics (for
// Examples and benchmark setup outside a test).
func New(tb TB, opts Options) *Room {
	if tb != nil {
		tb.Helper()
	}
	r, err := Create(opts)
	if err != nil {
		fail(tb, err)
		return nil
	}
	r.tb = tb
	return r
}

// Create is New returning an error instead of failing a test.
func Create(opts Options) (*Room, error) {
	version := opts.Version
	if version == "" {
		version = roomversion.Default
	}
	rules, err := roomversion.Get(version)
	if err != nil {
		return nil, fmt.Errorf("roomtest: %w", err)
	}
	creator := opts.Creator
	if creator == "" {
		creator = DefaultCreator
	}
	uid, err := id.ParseUserID(creator)
	if err != nil {
		return nil, fmt.Errorf("roomtest: creator: %w", err)
	}
	keys := opts.Keys
	if keys == nil {
		keys = NewKeyring()
	}
	r := &Room{Rules: rules, Keys: keys, creator: creator, byID: map[string]*record{}, ts: opts.StartTS - 1}
	if opts.StartTS == 0 {
		r.ts = DefaultStartTS - 1
	}
	if rules.EventReferencesWithHashes {
		r.refs = map[string][]byte{}
	}
	if !rules.RoomIDFromCreateEvent {
		var b [9]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, err
		}
		r.ID = "!" + signing.EncodeBase64URL(b[:]) + ":" + uid.Server().String()
	}
	r.Branch = &Branch{room: r, state: eventauth.StateMap{}, snap: &snapshot{full: eventauth.StateMap{}}}
	content := map[string]any{"room_version": rules.ID}
	if !rules.CreatorFromSender {
		content["creator"] = creator
	}
	if rules.RoomIDFromCreateEvent {
		// The room ID is the create event's hash: a nonce keeps two
		// rooms of one test apart.
		var n [9]byte
		if _, err := rand.Read(n[:]); err != nil {
			return nil, err
		}
		content["org.roomtest.nonce"] = signing.EncodeBase64URL(n[:])
	}
	maps.Copy(content, opts.CreateContent)
	steps := []Event{
		{Type: "m.room.create", Sender: creator, StateKey: Str(""), Content: content},
		{Type: "m.room.member", Sender: creator, StateKey: Str(creator), Content: map[string]any{"membership": "join"}},
	}
	if !opts.Bare {
		jr := opts.JoinRule
		if jr == "" {
			jr = "public"
		}
		steps = append(steps,
			Event{Type: "m.room.power_levels", Sender: creator, StateKey: Str(""), Content: r.defaultPowerLevels()},
			Event{Type: "m.room.join_rules", Sender: creator, StateKey: Str(""), Content: map[string]any{"join_rule": jr}})
	}
	for _, e := range steps {
		if _, err := r.Branch.Send(e); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func (r *Room) defaultPowerLevels() map[string]any {
	users := map[string]any{}
	if !r.Rules.PrivilegedCreators {
		users[r.creator] = 100
	}
	return map[string]any{
		"users": users, "users_default": 0, "events": map[string]any{}, "events_default": 0,
		"state_default": 50, "ban": 50, "kick": 50, "redact": 50, "invite": 0,
	}
}

func fail(tb TB, err error) {
	if tb == nil {
		panic(err)
	}
	tb.Helper()
	tb.Fatalf("%v", err)
}

// Creator returns the user who created the room.
func (r *Room) Creator() string { return r.creator }

// CreateEvent returns the room's m.room.create event.
func (r *Room) CreateEvent() *event.PDU {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.create
}

// Event returns the event with the given ID, or nil.
func (r *Room) Event(eventID string) *event.PDU {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if rec := r.byID[eventID]; rec != nil {
		return rec.ev
	}
	return nil
}

// Events implements stateres.Provider: the events with the given IDs, nil
// for unknown ones.
func (r *Room) Events(_ context.Context, ids []string) ([]*event.PDU, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]*event.PDU, len(ids))
	for i, eid := range ids {
		if rec := r.byID[eid]; rec != nil {
			out[i] = rec.ev
		}
	}
	return out, nil
}

// Rejected implements stateres.RejectionTracker: the kit keeps no rejected
// events, so it reports false.
func (r *Room) Rejected(string) bool { return false }

// VerifyKey implements signing.KeyLookup through the room's Keys.
func (r *Room) VerifyKey(ctx context.Context, server, keyID string, validAt time.Time) (ed25519.PublicKey, error) {
	return r.Keys.VerifyKey(ctx, server, keyID, validAt)
}

// All returns every event of the room in the order it was built.
func (r *Room) All() []*event.PDU {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Clone(r.order)
}

// Len returns the number of events in the room.
func (r *Room) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.order)
}

// StateAfter returns a new map of the state after the event eventID, or
// nil for an unknown event.
func (r *Room) StateAfter(eventID string) eventauth.StateMap {
	r.mu.RLock()
	defer r.mu.RUnlock()
	rec := r.byID[eventID]
	if rec == nil {
		return nil
	}
	return rec.after.materialize()
}

// StateBefore returns a new map of the state before the event eventID (the
// state its prev events lead to, which the event was authorised against and
// which /state and /state_ids return), or nil for an unknown event.
func (r *Room) StateBefore(eventID string) eventauth.StateMap {
	r.mu.RLock()
	defer r.mu.RUnlock()
	rec := r.byID[eventID]
	if rec == nil {
		return nil
	}
	return rec.before.materialize()
}

// AuthEvents returns the events ev's auth_events name, in its order,
// leaving out those the room does not have.
func (r *Room) AuthEvents(ev *event.PDU) []*event.PDU {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []*event.PDU
	for _, a := range ev.AuthEventIDs() {
		if rec := r.byID[a]; rec != nil {
			out = append(out, rec.ev)
		}
	}
	return out
}

// AuthChain returns the auth chain of the events eventIDs (their auth
// events, recursively, without the events themselves unless one cites
// another), oldest first. Unknown IDs are skipped.
func (r *Room) AuthChain(eventIDs ...string) []*event.PDU {
	r.mu.RLock()
	defer r.mu.RUnlock()
	seen := map[string]bool{}
	var out []*event.PDU
	var stack []string
	for _, e := range eventIDs {
		if rec := r.byID[e]; rec != nil {
			stack = append(stack, rec.ev.AuthEventIDs()...)
		}
	}
	for len(stack) > 0 {
		e := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[e] {
			continue
		}
		seen[e] = true
		if rec := r.byID[e]; rec != nil {
			out = append(out, rec.ev)
			stack = append(stack, rec.ev.AuthEventIDs()...)
		}
	}
	slices.SortFunc(out, func(a, b *event.PDU) int {
		if c := cmp.Compare(a.Depth(), b.Depth()); c != 0 {
			return c
		}
		return cmp.Compare(a.OriginServerTS(), b.OriginServerTS())
	})
	return out
}

// StateIDs returns the event IDs of a state map.
func StateIDs(m eventauth.StateMap) map[eventauth.StateKey]string {
	out := make(map[eventauth.StateKey]string, len(m))
	for k, ev := range m {
		out[k] = ev.EventID()
	}
	return out
}

// Str returns a pointer to s, for state keys.
func Str(s string) *string { return &s }

// snapshot is the state after an event: a chain of added state events
// back to a full map kept every fullEvery nodes, so that recording the
// state after every event costs O(1) per event.
type snapshot struct {
	parent *snapshot
	ev     *event.PDU
	full   eventauth.StateMap
	n      int
}

const fullEvery = 64

func (s *snapshot) materialize() eventauth.StateMap {
	var chain []*event.PDU
	for ; s.full == nil; s = s.parent {
		chain = append(chain, s.ev)
	}
	m := make(eventauth.StateMap, len(s.full)+len(chain))
	maps.Copy(m, s.full)
	for i := len(chain) - 1; i >= 0; i-- {
		m.Add(chain[i])
	}
	return m
}

func marshalContent(c any) ([]byte, error) {
	switch c := c.(type) {
	case nil:
		return []byte(`{}`), nil
	case []byte:
		return c, nil
	case json.RawMessage:
		return c, nil
	case string:
		return []byte(c), nil
	default:
		return json.Marshal(c)
	}
}
