package stateres

import (
	"context"
	"fmt"
	"math"

	"github.com/tidwall/gjson"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/eventauth"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
)

// Provider gives [Resolve] access to the events of the room.
type Provider interface {
	// Events returns the events with the given IDs, in the same order and
	// with the same length as ids; an entry is nil when the event is not
	// known. An error aborts the resolution and is returned wrapped.
	Events(ctx context.Context, ids []string) ([]*event.PDU, error)
}

// RejectionTracker is implemented by providers that know which events were
// rejected. Rejected events are never used as the auth-events fallback of
// the iterative auth checks (spec: "Rejected events").
type RejectionTracker interface {
	// Rejected reports whether the event was rejected.
	Rejected(eventID string) bool
}

// DefaultMaxEvents is the number of events one resolution may load when
// Resolver.MaxEvents is zero.
const DefaultMaxEvents = 4 << 20

// Resolver resolves state with options. The zero value is ready to use.
type Resolver struct {
	// MaxEvents bounds how many events one resolution loads (the state
	// sets, the auth chains it walks). Zero means DefaultMaxEvents.
	MaxEvents int
}

// Resolve resolves stateSets (maps from (type, state_key) to event ID) with
// the algorithm rules.StateResolution names, loading events from provider.
// See [Resolver.Resolve].
func Resolve(ctx context.Context, rules roomversion.Rules, stateSets []map[eventauth.StateKey]string, provider Provider) (map[eventauth.StateKey]string, error) {
	return Resolver{}.Resolve(ctx, rules, stateSets, provider)
}

// Resolve returns the resolution of stateSets: state resolution v1 when
// rules.StateResolution is [roomversion.StateResV1], v2 for
// [roomversion.StateResV2] and v2.1 for [roomversion.StateResV2_1].
//
// If provider implements [AuthChainIndex], the auth difference, the
// conflicted state subgraph and the auth chain membership of step 1 come
// from it and only the events of the full conflicted set (with their auth
// events and the power levels chains the mainline walks) are loaded;
// otherwise the auth chains of every event in the state sets are loaded. If
// provider implements [RejectionTracker], rejected auth events are skipped by
// the auth-events fallback of the iterative auth checks.
//
// The state sets are not modified and the result is a new map. Entries whose
// events get loaded are checked to name an event of their type and state key.
//
// Errors wrap [ErrBadInput] (no state sets, an entry whose event has another
// type or state key, events of another room, an unknown algorithm),
// [ErrMissingEvent], [ErrAuthCycle], [ErrTooManyEvents], the context's error
// or the provider's error.
func (r Resolver) Resolve(ctx context.Context, rules roomversion.Rules, stateSets []map[eventauth.StateKey]string, provider Provider) (map[eventauth.StateKey]string, error) {
	if len(stateSets) == 0 {
		return nil, fmt.Errorf("%w: no state sets", ErrBadInput)
	}
	if provider == nil {
		return nil, fmt.Errorf("%w: nil provider", ErrBadInput)
	}
	sets := stateSets
	// v2 without an index loads the events of the sets and the rest of
	// their auth chains; otherwise about the conflict is loaded, which may
	// be small in a large room.
	hint := 64
	if _, indexed := provider.(AuthChainIndex); !indexed && rules.StateResolution != roomversion.StateResV1 {
		for _, s := range sets {
			hint += len(s)
		}
		// The auth chains add events that are in no set, such as the
		// earlier memberships the member events cite: half as many again.
		hint += hint / 2
	}
	limit := r.MaxEvents
	if limit <= 0 {
		limit = DefaultMaxEvents
	}
	a := &adapter{rules: rules, provider: provider}
	a.rejections, _ = provider.(RejectionTracker)
	g := newGraph(a.fetch, limit, min(hint, limit))
	a.g = g
	e := &engine{rules: rules, g: g, check: a, create: -1}
	a.e = e

	var (
		out map[stateKey]string
		err error
	)
	switch rules.StateResolution {
	case roomversion.StateResV1:
		out, err = e.resolveV1(ctx, sets)
	case roomversion.StateResV2, roomversion.StateResV2_1:
		index, _ := provider.(AuthChainIndex)
		out, err = e.resolveV2(ctx, sets, index)
	default:
		return nil, fmt.Errorf("%w: state resolution algorithm %v", ErrBadInput, rules.StateResolution)
	}
	if err != nil {
		return nil, err
	}
	// From room version 12 a create event carries no room_id: it belongs to
	// the room only if the room ID is derived from it.
	if rules.RoomIDFromCreateEvent && a.roomID != "" {
		for i := range g.info {
			n := &g.info[i]
			if n.typ == typeCreate && n.roomID == "" && n.id != "$"+a.roomID[1:] {
				return nil, fmt.Errorf("%w: create event %s is not the create event of %s", ErrBadInput, n.id, a.roomID)
			}
		}
	}
	// Every state set entry whose event got loaded must name an event of
	// that type and state key (checked while loading when all were).
	for j := 0; j < len(sets) && !e.entriesChecked; j++ {
		for k, id := range sets[j] {
			if i, ok := g.index(id); ok {
				if err := e.checkEntry(g.keys.find(k.Type, k.StateKey), k, i); err != nil {
					return nil, err
				}
			}
		}
	}
	return out, nil
}

// adapter connects the engine to real events and eventauth.
type adapter struct {
	rules      roomversion.Rules
	provider   Provider
	rejections RejectionTracker
	g          *graph
	e          *engine
	pdus       []*event.PDU
	roomID     string
	vs         viewState
}

func (a *adapter) fetch(ctx context.Context, g *graph, ids []string) error {
	evs, err := a.provider.Events(ctx, ids)
	if err != nil {
		return fmt.Errorf("stateres: provider: %w", err)
	}
	if len(evs) != len(ids) {
		return fmt.Errorf("%w: provider returned %d events for %d IDs", ErrBadInput, len(evs), len(ids))
	}
	for i, p := range evs {
		if p == nil {
			return fmt.Errorf("%w: %s", ErrMissingEvent, ids[i])
		}
	}
	for i, p := range evs {
		room := p.RoomID()
		switch {
		case room == "" && p.Type() == typeCreate && a.rules.RoomIDFromCreateEvent:
			// A create event without room_id (room version 12 and later).
		case a.roomID == "":
			a.roomID = room
		case room != a.roomID:
			return fmt.Errorf("%w: event %s is in room %q, not %q", ErrBadInput, p.EventID(), room, a.roomID)
		}
		sk, isState := p.StateKey()
		if _, err := g.addFetched(i, fetched{
			id: p.EventID(), roomID: room, typ: p.Type(), stateKey: sk, isState: isState,
			sender: p.Sender(), membership: p.Membership(), ts: p.OriginServerTS(),
			depth: p.Depth(), authIDs: p.AuthEventIDs(),
			rejected: a.rejections != nil && a.rejections.Rejected(p.EventID()),
			ext:      len(a.pdus),
		}); err != nil {
			return err
		}
		a.pdus = append(a.pdus, p)
	}
	return nil
}

func (a *adapter) pdu(i int32) *event.PDU {
	if i < 0 {
		return nil
	}
	return a.pdus[a.g.nodes[i].ext]
}

// viewState is the eventauth.State of one iterative auth check.
type viewState struct {
	ctx context.Context
	a   *adapter
	v   *authView
}

func (s *viewState) get(typ, sk string) *event.PDU { return s.a.pdu(s.v.get(s.ctx, typ, sk)) }

func (s *viewState) Create() *event.PDU      { return s.get(typeCreate, "") }
func (s *viewState) PowerLevels() *event.PDU { return s.get(typePowerLevels, "") }
func (s *viewState) JoinRules() *event.PDU   { return s.get(typeJoinRules, "") }
func (s *viewState) Member(userID string) *event.PDU {
	return s.get(typeMember, userID)
}
func (s *viewState) ThirdPartyInvite(token string) *event.PDU {
	return s.get("m.room.third_party_invite", token)
}

func (a *adapter) allowed(ctx context.Context, v *authView) (bool, error) {
	// One viewState per resolution: no allocation per check.
	a.vs = viewState{ctx: ctx, a: a, v: v}
	err := eventauth.Check(a.pdu(v.ev), &a.vs)
	if v.err != nil {
		return false, v.err
	}
	// A rejection, or any other failure (malformed content), means not
	// allowed.
	return err == nil, nil
}

// creatorPower is the power level of a room creator from room version 12:
// infinite, above every integer level.
const creatorPower = math.MaxInt64

// senderPower returns the power level of ev's sender as ev's own auth
// events give it: the power levels event it cites, and the create event for
// the room creators (infinite from room version 12; 100 before it when no
// power levels event is cited).
func (a *adapter) senderPower(ctx context.Context, ev int32) (int64, error) {
	g := a.g
	auth, err := g.authOf(ctx, ev)
	if err != nil {
		return 0, err
	}
	sender := a.pdu(ev).Sender()
	create, pl := int32(-1), int32(-1)
	for _, x := range auth {
		switch k := g.nodes[x].key; {
		case k < 0:
		case k == g.keys.createKey && create < 0:
			create = x
		case k == g.keys.plKey && pl < 0:
			pl = x
		}
	}
	if create < 0 {
		create = a.e.create
	}
	if a.rules.PrivilegedCreators && create >= 0 && a.isCreator(create, sender) {
		return creatorPower, nil
	}
	if pl >= 0 {
		view, err := a.pdu(pl).PowerLevels()
		if err != nil {
			// Content that does not parse gives no power.
			return 0, nil
		}
		return view.UserLevel(sender), nil
	}
	if create >= 0 && a.isCreator(create, sender) {
		return 100, nil
	}
	return 0, nil
}

// isCreator reports whether user is a creator of the room per the create
// event: content.creator before room version 11, the sender from 11, plus
// content.additional_creators from 12.
func (a *adapter) isCreator(create int32, user string) bool {
	p := a.pdu(create)
	if !a.rules.CreatorFromSender {
		return gjson.GetBytes(p.Content(), "creator").Str == user
	}
	if p.Sender() == user {
		return true
	}
	if !a.rules.PrivilegedCreators {
		return false
	}
	found := false
	gjson.GetBytes(p.Content(), "additional_creators").ForEach(func(_, u gjson.Result) bool {
		found = u.Type == gjson.String && u.Str == user
		return !found
	})
	return found
}
