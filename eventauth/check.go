package eventauth

import (
	"fmt"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
)

// Options tunes [CheckWithOptions] and [CheckAuthEvents]. The zero value is
// ready to use.
type Options struct {
	// VerifyServerSignature reports whether ev carries a valid signature by
	// serverName (rule "join_authorised_via_users_server must be validly
	// signed", room version 8 and later). If nil, the rule is satisfied when
	// ev's signatures object has an entry for serverName, which is right
	// when ev's signatures were verified on receipt against every server
	// that signed it.
	VerifyServerSignature func(ev *event.PDU, serverName string) error

	// Create is the room's create event, for [CheckAuthEvents] in room
	// versions where events do not cite it (12 and later); it must be an
	// accepted event (rule 2 of room version 12 requires the room ID to
	// name an accepted create event). Ignored by [CheckWithOptions], which
	// takes it from the state, and in versions whose events cite it.
	Create *event.PDU

	// Rejected reports whether an auth event was itself rejected (the
	// auth events rule on rejected entries: 2.3, or 3.3 in room version
	// 12). Used by [CheckAuthEvents]; nil means none was.
	Rejected func(eventID string) bool
}

// Check reports whether ev is allowed by the authorization rules of its room
// version (ev.Rules()) against state: the state before the event, the
// room's current state, or any other state the caller chooses. The auth
// events rules (duplicates, irrelevant or rejected auth events) are not
// applied, since state is not the event's auth_events; see
// [CheckAuthEvents] for those.
//
// It returns nil if the event is allowed and an [*Error] naming the rule
// that rejected it otherwise; an error wrapping [ErrBadState] (not an
// *Error) means a state event it needed could not be read. It allocates
// nothing for an allowed event whose state views were read before. A nil
// state is an empty one; ev must not be nil.
func Check(ev *event.PDU, state State) error {
	var c checker
	c.st = orEmpty(state)
	_, err := c.run(ev)
	return err
}

// CheckWithOptions is [Check] with options. It also returns the number of
// the rule that decided: the allowing rule (for example "10" for
// "otherwise, allow" in room version 10) or the rejecting one.
func CheckWithOptions(ev *event.PDU, state State, opts Options) (rule string, err error) {
	var c checker
	c.opts, c.st = opts, orEmpty(state)
	r, err := c.run(ev)
	if err != nil {
		return ruleOf(err), err
	}
	code, _, _ := ruleCode(ev.RulesRef(), r)
	return code, nil
}

// CheckAuthEvents checks ev against its own auth events (PDU receipt check
// 4): authEvents are the events ev's auth_events lists, in any order, each
// exactly once. The auth events rules apply first (duplicate or irrelevant
// entries, rejected entries via opts.Rejected, no create event, another
// room), then every other rule with the auth events as the state. From room
// version 12 the create event is not cited; pass it as opts.Create.
//
// It returns the number of the deciding rule as [CheckWithOptions] does. If
// authEvents misses an event ev lists, or has one it does not list, the
// error wraps [ErrMissingAuthEvent] and is not an [*Error].
func CheckAuthEvents(ev *event.PDU, authEvents []*event.PDU, opts Options) (rule string, err error) {
	var c checker
	c.opts = opts
	c.authMode = true
	ids := ev.AuthEventIDs()
	// Usual case: the caller passes the events in the order listed.
	inOrder := len(authEvents) == len(ids)
	for i := 0; inOrder && i < len(ids); i++ {
		inOrder = authEvents[i] != nil && authEvents[i].EventID() == ids[i]
	}
	if inOrder {
		c.auth.set(authEvents)
	} else {
		ordered := make([]*event.PDU, 0, len(ids))
		for _, id := range ids {
			var found *event.PDU
			for _, ae := range authEvents {
				if ae != nil && ae.EventID() == id {
					found = ae
					break
				}
			}
			if found == nil {
				return "", fmt.Errorf("%w: %s lists %s", ErrMissingAuthEvent, ev.EventID(), id)
			}
			ordered = append(ordered, found)
		}
		for _, ae := range authEvents {
			if ae == nil {
				continue
			}
			listed := false
			for _, id := range ids {
				if ae.EventID() == id {
					listed = true
					break
				}
			}
			if !listed {
				return "", fmt.Errorf("%w: %s does not list %s", ErrMissingAuthEvent, ev.EventID(), ae.EventID())
			}
		}
		c.auth.set(ordered)
	}
	if !ev.Rules().CreateEventInAuthEvents {
		c.auth.create = opts.Create
	}
	r, err := c.run(ev)
	if err != nil {
		return ruleOf(err), err
	}
	code, _, _ := ruleCode(ev.RulesRef(), r)
	return code, nil
}

// orEmpty returns st, or an empty state for nil.
func orEmpty(st State) State {
	if st == nil {
		return StateMap(nil)
	}
	return st
}

// ruleOf returns the rule of a rejection, "" for other errors (a state
// that cannot be read).
func ruleOf(err error) string {
	if ae, ok := err.(*Error); ok {
		return ae.Rule
	}
	return ""
}

// checker carries one check. It lives on the stack: the auth events are
// held inline, not behind an interface, so that checking against them
// allocates nothing in the usual case.
type checker struct {
	opts Options
	v    *roomversion.Rules
	ev   *event.PDU
	// st is the state checked against, unless authMode: then it is auth.
	st       State
	authMode bool
	auth     authState
	create   *event.PDU
	sender   string
	pl       levels
}

// run applies the rules in the spec's order and returns the rule that
// decided. In authMode the state is ev's own auth events (c.auth) and the
// auth events rules apply.
func (c *checker) run(ev *event.PDU) (rule, error) {
	c.v = ev.RulesRef()
	c.ev = ev
	c.sender = ev.Sender()

	if ev.Type() == typeCreate {
		return c.checkCreate()
	}
	c.create = c.stateCreate()

	if c.v.RoomIDFromCreateEvent {
		if c.create == nil {
			return c.reject(rRoomIDFromCreate, "the room's create event is unknown")
		}
		if !roomIDMatchesCreate(ev.RoomID(), c.create.EventID()) {
			return c.reject(rRoomIDFromCreate, fmt.Sprintf(
				"room ID %q is not derived from create event %s", ev.RoomID(), c.create.EventID()))
		}
	}

	if c.authMode {
		if r, err := c.checkAuthEvents(); err != nil {
			return r, err
		}
	} else if c.create == nil && c.v.CreateEventInAuthEvents {
		return c.reject(rAuthNoCreate, "the state has no m.room.create event")
	}

	if !federates(c.create) && domainOf(c.sender) != domainOf(c.create.Sender()) {
		return c.reject(rFederate, fmt.Sprintf(
			"the room does not federate (m.federate is false) and %s is not on the creator's server %s",
			c.sender, domainOf(c.create.Sender())))
	}

	if c.v.SpecialCaseAliases && ev.Type() == typeAliases {
		sk, ok := ev.StateKey()
		if !ok {
			return c.reject(rAliasesNoStateKey, "m.room.aliases event has no state_key")
		}
		if sk != domainOf(c.sender) {
			return c.reject(rAliasesDomain, fmt.Sprintf(
				"m.room.aliases state_key %q is not the sender's server %q", sk, domainOf(c.sender)))
		}
		return rAliasesAllow, nil
	}

	if err := c.loadLevels(); err != nil {
		return rNone, err
	}

	if ev.Type() == typeMember {
		return c.checkMember()
	}

	if m := membershipOf(c.member(c.sender)); m != "join" {
		return c.reject(rSenderNotJoined, fmt.Sprintf("%s is not joined to the room (membership %s)", c.sender, describe(m)))
	}

	senderLevel := c.userLevel(c.sender)
	if ev.Type() == typeThirdPartyInvite {
		if senderLevel >= c.pl.invite {
			return rThirdPartyInviteLevel, nil
		}
		return c.reject(rThirdPartyInviteLevel, fmt.Sprintf(
			"%s has power level %s, below the invite level %d needed for m.room.third_party_invite",
			c.sender, levelString(senderLevel), c.pl.invite))
	}

	_, isState := ev.StateKey()
	if need := c.eventLevel(ev.Type(), isState); need > senderLevel {
		return c.reject(rRequiredLevel, fmt.Sprintf(
			"%s has power level %s, below the %d needed to send %s events",
			c.sender, levelString(senderLevel), need, ev.Type()))
	}

	if sk, ok := ev.StateKey(); ok && len(sk) > 0 && sk[0] == '@' && sk != c.sender {
		return c.reject(rStateKey, fmt.Sprintf("state_key %q is another user's and the sender is %s", sk, c.sender))
	}

	if ev.Type() == typePowerLevels {
		return c.checkPowerLevels(senderLevel)
	}

	if c.v.RedactionAuthRule && ev.Type() == typeRedaction {
		return c.checkRedaction(senderLevel)
	}

	return rOtherwise, nil
}

func (c *checker) reject(r rule, reason string) (rule, error) {
	return r, reject(c.v, r, reason)
}

// roomIDMatchesCreate reports whether roomID is createID with "!" for "$",
// without building the string.
func roomIDMatchesCreate(roomID, createID string) bool {
	return len(roomID) > 1 && len(createID) == len(roomID) &&
		roomID[0] == '!' && createID[0] == '$' && roomID[1:] == createID[1:]
}

// domainOf returns the server part of a user ID (everything after the first
// colon), or "" if there is none.
func domainOf(userID string) string {
	for i := 0; i < len(userID); i++ {
		if userID[i] == ':' {
			return userID[i+1:]
		}
	}
	return ""
}

// membershipOf returns the membership of a member event, "" for nil.
func membershipOf(ev *event.PDU) string {
	if ev == nil {
		return ""
	}
	return ev.Membership()
}

func describe(membership string) string {
	if membership == "" {
		return "none"
	}
	return fmt.Sprintf("%q", membership)
}
