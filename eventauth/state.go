package eventauth

import (
	"iter"

	"github.com/gomatrixlib/gomatrixlib/event"
)

const (
	typeCreate            = "m.room.create"
	typeMember            = "m.room.member"
	typePowerLevels       = "m.room.power_levels"
	typeJoinRules         = "m.room.join_rules"
	typeThirdPartyInvite  = "m.room.third_party_invite"
	typeAliases           = "m.room.aliases"
	typeRedaction         = "m.room.redaction"
	typeHistoryVisibility = "m.room.history_visibility"
)

// State is the room state an event is checked against: the event's auth
// events, the state before the event, or the room's current state. Each
// method returns the current event for that state entry, or nil if there is
// none. Implementations must return accepted events only; the rules trust
// them.
type State interface {
	// Create returns the m.room.create event.
	Create() *event.PDU
	// PowerLevels returns the m.room.power_levels event.
	PowerLevels() *event.PDU
	// JoinRules returns the m.room.join_rules event.
	JoinRules() *event.PDU
	// Member returns the m.room.member event whose state_key is userID.
	Member(userID string) *event.PDU
	// ThirdPartyInvite returns the m.room.third_party_invite event whose
	// state_key is token.
	ThirdPartyInvite(token string) *event.PDU
}

// VisibilityState is the state history visibility needs.
type VisibilityState interface {
	// HistoryVisibility returns the m.room.history_visibility event.
	HistoryVisibility() *event.PDU
	// Member returns the m.room.member event whose state_key is userID.
	Member(userID string) *event.PDU
}

// MemberLister is a [VisibilityState] that can list the room's member
// events, as [ServerMaySee] needs.
type MemberLister interface {
	VisibilityState
	// Members yields every m.room.member event with its state_key.
	Members() iter.Seq2[string, *event.PDU]
}

// StateKey is the (type, state_key) pair that identifies a state entry.
type StateKey struct {
	Type     string
	StateKey string
}

// StateMap is a [State], [VisibilityState] and [MemberLister] backed by a
// map. The zero value is not usable for Add; make one with make(StateMap).
type StateMap map[StateKey]*event.PDU

// Add records a state event under its (type, state_key). Events without a
// state_key are ignored.
func (m StateMap) Add(ev *event.PDU) {
	if ev == nil {
		return
	}
	sk, ok := ev.StateKey()
	if !ok {
		return
	}
	m[StateKey{Type: ev.Type(), StateKey: sk}] = ev
}

// Create implements [State].
func (m StateMap) Create() *event.PDU { return m[StateKey{Type: typeCreate}] }

// PowerLevels implements [State].
func (m StateMap) PowerLevels() *event.PDU { return m[StateKey{Type: typePowerLevels}] }

// JoinRules implements [State].
func (m StateMap) JoinRules() *event.PDU { return m[StateKey{Type: typeJoinRules}] }

// Member implements [State].
func (m StateMap) Member(userID string) *event.PDU {
	return m[StateKey{Type: typeMember, StateKey: userID}]
}

// ThirdPartyInvite implements [State].
func (m StateMap) ThirdPartyInvite(token string) *event.PDU {
	return m[StateKey{Type: typeThirdPartyInvite, StateKey: token}]
}

// HistoryVisibility implements [VisibilityState].
func (m StateMap) HistoryVisibility() *event.PDU {
	return m[StateKey{Type: typeHistoryVisibility}]
}

// Members implements [MemberLister].
func (m StateMap) Members() iter.Seq2[string, *event.PDU] {
	return func(yield func(string, *event.PDU) bool) {
		for k, ev := range m {
			if k.Type == typeMember && !yield(k.StateKey, ev) {
				return
			}
		}
	}
}

// authState holds the events an event cites (and, from room version 12,
// the room's create event, which is not cited), inline for the usual
// handful. Lookups are a linear scan.
type authState struct {
	create *event.PDU
	buf    [8]*event.PDU
	n      int
	more   []*event.PDU // used instead of buf when there are more
}

func (s *authState) set(evs []*event.PDU) {
	if len(evs) <= len(s.buf) {
		s.n = copy(s.buf[:], evs)
		return
	}
	s.more = evs
}

func (s *authState) list() []*event.PDU {
	if s.more != nil {
		return s.more
	}
	return s.buf[:s.n]
}

func (s *authState) find(typ, stateKey string) *event.PDU {
	for _, ev := range s.list() {
		if ev == nil || ev.Type() != typ {
			continue
		}
		if sk, ok := ev.StateKey(); ok && sk == stateKey {
			return ev
		}
	}
	return nil
}

// The checker's view of the state: the auth events in authMode, else the
// State it was given.

func (c *checker) stateCreate() *event.PDU {
	if !c.authMode {
		return c.st.Create()
	}
	if c.auth.create != nil {
		return c.auth.create
	}
	return c.auth.find(typeCreate, "")
}

func (c *checker) statePowerLevels() *event.PDU {
	if !c.authMode {
		return c.st.PowerLevels()
	}
	return c.auth.find(typePowerLevels, "")
}

func (c *checker) stateJoinRules() *event.PDU {
	if !c.authMode {
		return c.st.JoinRules()
	}
	return c.auth.find(typeJoinRules, "")
}

func (c *checker) member(userID string) *event.PDU {
	if !c.authMode {
		return c.st.Member(userID)
	}
	return c.auth.find(typeMember, userID)
}

func (c *checker) stateThirdPartyInvite(token string) *event.PDU {
	if !c.authMode {
		return c.st.ThirdPartyInvite(token)
	}
	return c.auth.find(typeThirdPartyInvite, token)
}

// Select returns the events of m under keys, skipping keys m has no event
// for; with [AuthEventsNeeded] it gives the auth events of a new event.
func (m StateMap) Select(keys []StateKey) []*event.PDU {
	out := make([]*event.PDU, 0, len(keys))
	for _, k := range keys {
		if ev := m[k]; ev != nil {
			out = append(out, ev)
		}
	}
	return out
}
