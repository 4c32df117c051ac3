package roomtest

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/eventauth"
	"github.com/gomatrixlib/gomatrixlib/hashing"
	"github.com/gomatrixlib/gomatrixlib/signing"
)

// Branch is one line of a room's history: its latest events (the next
// event's prev_events) and its current state. Every event a branch builds
// cites the branch's latest events and the auth events that
// eventauth.AuthEventsNeeded selects from the branch's state, is signed by
// its sender's server and, unless [Event.Unchecked], is allowed by the
// authorization rules against that state.
type Branch struct {
	room  *Room
	state eventauth.StateMap
	snap  *snapshot
	prev  []string
	depth int64
}

// Event describes an event for [Branch.Send]. Zero fields take the
// branch's defaults.
type Event struct {
	Type   string
	Sender string
	// StateKey is nil for a message event (see Str).
	StateKey *string
	// Content is the content: nil for {}, JSON as []byte,
	// json.RawMessage or string, or any value json.Marshal accepts.
	Content any
	// Redacts is the target of an m.room.redaction.
	Redacts string
	// PrevEvents and AuthEvents, when not nil, replace the branch's latest
	// events and the selected auth events.
	PrevEvents, AuthEvents []string
	// OriginServerTS in milliseconds; zero takes the room's clock.
	OriginServerTS int64
	// Unchecked skips the authorization check, to build events that the
	// rules reject (and that then enter the branch's state anyway).
	Unchecked bool
}

// Room returns the branch's room.
func (b *Branch) Room() *Room { return b.room }

// Fork returns a new branch starting where b is now: the same latest
// events and state. Events sent on either branch do not affect the other.
func (b *Branch) Fork() *Branch {
	b.room.mu.Lock()
	defer b.room.mu.Unlock()
	return &Branch{room: b.room, state: maps.Clone(b.state), snap: b.snap, prev: slices.Clone(b.prev), depth: b.depth}
}

// Merge joins others into b: b's next event cites the latest events of b
// and of others, and b's state becomes resolved, a state map of event IDs
// of the room (typically what stateres.Resolve returned for the
// branches' states). It fails the test if resolved names an unknown event.
func (b *Branch) Merge(resolved map[eventauth.StateKey]string, others ...*Branch) {
	if err := b.merge(resolved, others); err != nil {
		fail(b.room.tb, err)
	}
}

func (b *Branch) merge(resolved map[eventauth.StateKey]string, others []*Branch) error {
	r := b.room
	r.mu.Lock()
	defer r.mu.Unlock()
	state := make(eventauth.StateMap, len(resolved))
	for _, eid := range resolved {
		rec := r.byID[eid]
		if rec == nil {
			return fmt.Errorf("roomtest: merge: unknown event %s", eid)
		}
		state.Add(rec.ev)
	}
	for _, o := range others {
		for _, p := range o.prev {
			if !slices.Contains(b.prev, p) {
				b.prev = append(b.prev, p)
			}
		}
		b.depth = max(b.depth, o.depth)
	}
	b.state = state
	b.snap = &snapshot{full: maps.Clone(state)}
	return nil
}

// Latest returns the IDs of the branch's latest events: the prev_events of
// its next event.
func (b *Branch) Latest() []string {
	b.room.mu.RLock()
	defer b.room.mu.RUnlock()
	return slices.Clone(b.prev)
}

// Last returns the branch's latest event (the first if merged).
func (b *Branch) Last() *event.PDU {
	b.room.mu.RLock()
	defer b.room.mu.RUnlock()
	if len(b.prev) == 0 {
		return nil
	}
	return b.room.byID[b.prev[0]].ev
}

// State returns a copy of the branch's current state.
func (b *Branch) State() eventauth.StateMap {
	b.room.mu.RLock()
	defer b.room.mu.RUnlock()
	return maps.Clone(b.state)
}

// StateIDs returns the branch's current state as event IDs, the form
// stateres.Resolve takes.
func (b *Branch) StateIDs() map[eventauth.StateKey]string {
	b.room.mu.RLock()
	defer b.room.mu.RUnlock()
	return StateIDs(b.state)
}

// Add is Send that fails the test on error.
func (b *Branch) Add(e Event) *event.PDU {
	ev, err := b.Send(e)
	if err != nil {
		if b.room.tb != nil {
			b.room.tb.Helper()
		}
		fail(b.room.tb, err)
	}
	return ev
}

// Send builds the event e on the branch, checks it against the branch's
// state (unless e.Unchecked) and records it: it becomes the branch's latest
// event and, for a state event, part of its state. Errors wrap
// ErrNotAllowed for an event the rules reject, or come from event.Builder.
func (b *Branch) Send(e Event) (*event.PDU, error) {
	r := b.room
	r.mu.Lock()
	defer r.mu.Unlock()
	ev, err := b.build(e, b.state, b.room, "")
	if err != nil {
		return nil, err
	}
	if !e.Unchecked && ev.Type() != "m.room.create" {
		if err := eventauth.Check(ev, b.state); err != nil {
			return nil, fmt.Errorf("%w: %s by %s: %w", ErrNotAllowed, ev.Type(), ev.Sender(), err)
		}
	}
	b.record(ev)
	return ev, nil
}

// build makes the event e with auth events selected from authState, whose
// events (for their reference hashes) are in authRoom, signed by signer
// ("": the sender's server). Callers hold the room lock.
func (b *Branch) build(e Event, authState eventauth.StateMap, authRoom *Room, signer string) (*event.PDU, error) {
	r := b.room
	content, err := marshalContent(e.Content)
	if err != nil {
		return nil, fmt.Errorf("roomtest: content of %s: %w", e.Type, err)
	}
	server := signer
	if server == "" {
		if server, err = serverOf(e.Sender); err != nil {
			return nil, err
		}
	}
	prev, depth := b.prev, b.depth
	if e.PrevEvents != nil {
		prev, depth = e.PrevEvents, 0
		for _, p := range prev {
			if rec := r.byID[p]; rec != nil {
				depth = max(depth, rec.ev.Depth())
			}
		}
	}
	auth := e.AuthEvents
	if auth == nil && e.Type != "m.room.create" {
		sk := ""
		if e.StateKey != nil {
			sk = *e.StateKey
		}
		auth = []string{}
		for _, ev := range authState.Select(eventauth.AuthEventsNeeded(r.Rules, e.Type, sk, e.Sender, content)) {
			auth = append(auth, ev.EventID())
		}
	}
	ts := e.OriginServerTS
	if ts == 0 {
		r.ts++
		ts = r.ts
	}
	bl := event.Builder{
		RoomID: r.ID, Type: e.Type, Sender: e.Sender, StateKey: e.StateKey, Content: content,
		PrevEvents: prev, AuthEvents: auth, Depth: depth + 1, OriginServerTS: ts, Redacts: e.Redacts,
	}
	if r.Rules.EventReferencesWithHashes {
		bl.ReferenceHashes = map[string][]byte{}
		for _, x := range slices.Concat(prev, auth) {
			h, ok := r.refs[x]
			if !ok {
				h, ok = authRoom.refs[x]
			}
			if !ok {
				// An ID the kit never built: any hash will do.
				h = make([]byte, 32)
			}
			bl.ReferenceHashes[x] = h
		}
	}
	key := r.Keys.Key(server)
	ev, err := bl.Build(r.Rules, server, key.KeyID(), key.PrivateKey())
	if err != nil {
		return nil, fmt.Errorf("roomtest: building %s by %s: %w", e.Type, e.Sender, err)
	}
	// A restricted join is also signed by the authorising user's server.
	if via := gjson.GetBytes(content, "join_authorised_via_users_server"); r.Rules.RestrictedJoins &&
		e.Type == "m.room.member" && ev.Membership() == "join" && via.Type == gjson.String {
		if viaServer, err := serverOf(via.Str); err == nil && viaServer != server {
			vk := r.Keys.Key(viaServer)
			raw, err := signing.SignEvent(r.Rules, viaServer, vk.KeyID(), vk.PrivateKey(), ev.JSON())
			if err == nil {
				ev, err = event.Parse(r.Rules, raw)
			}
			if err != nil {
				return nil, fmt.Errorf("roomtest: cosigning a restricted join by %s: %w", viaServer, err)
			}
		}
	}
	return ev, nil
}

// record adds a built event to the room and the branch. Callers hold the
// room lock.
func (b *Branch) record(ev *event.PDU) {
	r := b.room
	if ev.Type() == "m.room.create" && r.create == nil {
		r.create = ev
		if r.ID == "" {
			r.ID = ev.RoomID()
			if r.ID == "" {
				r.ID = "!" + ev.EventID()[1:]
			}
		}
	}
	rec := &record{ev: ev, before: b.snap, after: b.snap}
	if _, isState := ev.StateKey(); isState {
		b.state.Add(ev)
		next := &snapshot{parent: b.snap, ev: ev, n: b.snap.n + 1}
		if next.n >= fullEvery {
			next.full, next.n = maps.Clone(b.state), 0
		}
		b.snap, rec.after = next, next
	}
	if r.refs != nil {
		if h, err := hashing.ReferenceHash(r.Rules, ev.JSON()); err == nil {
			r.refs[ev.EventID()] = h
		}
	}
	r.byID[ev.EventID()] = rec
	r.order = append(r.order, ev)
	b.prev = []string{ev.EventID()}
	b.depth = ev.Depth()
}

func serverOf(user string) (string, error) {
	i := strings.IndexByte(user, ':')
	if i < 0 {
		return "", fmt.Errorf("roomtest: sender %q has no server name", user)
	}
	return user[i+1:], nil
}

func (b *Branch) member(sender, target, membership string, extra map[string]any) *event.PDU {
	content := map[string]any{"membership": membership}
	maps.Copy(content, extra)
	return b.Add(Event{Type: "m.room.member", Sender: sender, StateKey: Str(target), Content: content})
}

// Join adds user's join.
func (b *Branch) Join(user string) *event.PDU { return b.member(user, user, "join", nil) }

// Invite adds sender's invite of target.
func (b *Branch) Invite(sender, target string) *event.PDU {
	return b.member(sender, target, "invite", nil)
}

// Leave adds user's leave.
func (b *Branch) Leave(user string) *event.PDU { return b.member(user, user, "leave", nil) }

// Kick adds sender's kick of target (a leave set by another user).
func (b *Branch) Kick(sender, target string) *event.PDU {
	return b.member(sender, target, "leave", map[string]any{"reason": "kicked by roomtest"})
}

// Ban adds sender's ban of target.
func (b *Branch) Ban(sender, target string) *event.PDU { return b.member(sender, target, "ban", nil) }

// Unban adds sender's unban of target (a leave).
func (b *Branch) Unban(sender, target string) *event.PDU {
	return b.member(sender, target, "leave", nil)
}

// Knock adds user's knock (room version 7 and later, join rule "knock").
func (b *Branch) Knock(user string) *event.PDU { return b.member(user, user, "knock", nil) }

// SetState adds a state event.
func (b *Branch) SetState(sender, evType, stateKey string, content any) *event.PDU {
	return b.Add(Event{Type: evType, Sender: sender, StateKey: Str(stateKey), Content: content})
}

// SetJoinRule sets the join rule ("public", "invite", "knock", ...).
func (b *Branch) SetJoinRule(sender, rule string) *event.PDU {
	return b.SetState(sender, "m.room.join_rules", "", map[string]any{"join_rule": rule})
}

// SetPowerLevels replaces the power levels content.
func (b *Branch) SetPowerLevels(sender string, content any) *event.PDU {
	return b.SetState(sender, "m.room.power_levels", "", content)
}

// SetPowerLevel changes one user's level in the current power levels.
func (b *Branch) SetPowerLevel(sender, user string, level int64) *event.PDU {
	content := map[string]any{}
	b.room.mu.RLock()
	pl := b.state.PowerLevels()
	b.room.mu.RUnlock()
	if pl != nil {
		if err := json.Unmarshal(pl.Content(), &content); err != nil {
			fail(b.room.tb, fmt.Errorf("roomtest: current power levels: %w", err))
			return nil
		}
	}
	users, _ := content["users"].(map[string]any)
	if users == nil {
		users = map[string]any{}
	}
	users[user] = level
	content["users"] = users
	return b.SetPowerLevels(sender, content)
}

// Message adds an m.room.message with a text body.
func (b *Branch) Message(sender, body string) *event.PDU {
	return b.Add(Event{Type: "m.room.message", Sender: sender, Content: map[string]any{"msgtype": "m.text", "body": body}})
}

// Redact adds sender's redaction of the event target.
func (b *Branch) Redact(sender, target string) *event.PDU {
	return b.Add(Event{Type: "m.room.redaction", Sender: sender, Redacts: target})
}

// Build builds e as the branch's next event, checked like Send, without
// recording it: a template for make_join and similar answers, or an event
// to hand to the code under test.
func (b *Branch) Build(e Event) (*event.PDU, error) {
	r := b.room
	r.mu.Lock()
	defer r.mu.Unlock()
	ev, err := b.build(e, b.state, r, "")
	if err != nil {
		return nil, err
	}
	if !e.Unchecked && ev.Type() != "m.room.create" {
		if err := eventauth.Check(ev, b.state); err != nil {
			return nil, fmt.Errorf("%w: %s by %s: %w", ErrNotAllowed, ev.Type(), ev.Sender(), err)
		}
	}
	return ev, nil
}

// Receive records an event built elsewhere (by the server under test) on
// the branch, after the checks a receiving server makes against what the
// room knows: it must be of the room, its auth events must be events of the
// room that pass eventauth.CheckAuthEvents, and it must be allowed against
// the branch's state. Signatures are the caller's to verify. The event
// becomes the branch's latest event. Errors wrap ErrNotAllowed for a
// rejection by the rules; an event the room already has is not recorded
// again and gives no error.
func (b *Branch) Receive(ev *event.PDU) error {
	r := b.room
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.byID[ev.EventID()]; ok {
		return nil
	}
	if ev.Rules().ID != r.Rules.ID || ev.RoomID() != r.ID {
		return fmt.Errorf("roomtest: event %s of room %s (version %s) is not of room %s", ev.EventID(), ev.RoomID(), ev.Rules().ID, r.ID)
	}
	var auth []*event.PDU
	for _, a := range ev.AuthEventIDs() {
		rec := r.byID[a]
		if rec == nil {
			return fmt.Errorf("roomtest: event %s cites unknown auth event %s", ev.EventID(), a)
		}
		auth = append(auth, rec.ev)
	}
	if _, err := eventauth.CheckAuthEvents(ev, auth, eventauth.Options{Create: r.create}); err != nil {
		return fmt.Errorf("%w: %s by %s against its auth events: %w", ErrNotAllowed, ev.Type(), ev.Sender(), err)
	}
	if err := eventauth.Check(ev, b.state); err != nil {
		return fmt.Errorf("%w: %s by %s: %w", ErrNotAllowed, ev.Type(), ev.Sender(), err)
	}
	b.record(ev)
	return nil
}
