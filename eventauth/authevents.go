package eventauth

import (
	"fmt"

	"github.com/tidwall/gjson"
)

// checkAuthEvents applies the auth events rules (rule 2 in room versions
// 1-11, rule 3 in 12) to the events ev cites, in ev's order.
func (c *checker) checkAuthEvents() (rule, error) {
	evs := c.auth.list()
	for i, x := range evs {
		xk, xok := x.StateKey()
		for _, y := range evs[:i] {
			yk, yok := y.StateKey()
			if x.Type() == y.Type() && xok == yok && xk == yk {
				return c.reject(rAuthDuplicate, fmt.Sprintf(
					"auth_events cites two events for (%s, %q): %s and %s", x.Type(), xk, y.EventID(), x.EventID()))
			}
		}
	}
	for _, x := range evs {
		sk, ok := x.StateKey()
		if !ok || !c.selected(StateKey{Type: x.Type(), StateKey: sk}) {
			if !ok {
				return c.reject(rAuthNotSelected, fmt.Sprintf(
					"auth_events cites %s, which is not a state event", x.EventID()))
			}
			return c.reject(rAuthNotSelected, fmt.Sprintf(
				"auth_events cites %s (%s, %q), which the auth events selection does not pick for this event",
				x.EventID(), x.Type(), sk))
		}
	}
	if c.opts.Rejected != nil {
		for _, x := range evs {
			if c.opts.Rejected(x.EventID()) {
				return c.reject(rAuthRejected, fmt.Sprintf("auth event %s was itself rejected", x.EventID()))
			}
		}
	}
	if c.v.CreateEventInAuthEvents && c.auth.find(typeCreate, "") == nil {
		return c.reject(rAuthNoCreate, "auth_events has no m.room.create event")
	}
	for _, x := range evs {
		if x.RoomID() != c.ev.RoomID() {
			return c.reject(rAuthRoomID, fmt.Sprintf(
				"auth event %s is in room %q, not %q", x.EventID(), x.RoomID(), c.ev.RoomID()))
		}
	}
	return rNone, nil
}

// selected reports whether the auth events selection picks k for c.ev. It
// is the membership test of [AuthEventsNeeded] without building the list.
func (c *checker) selected(k StateKey) bool {
	ev := c.ev
	switch k.Type {
	case typeCreate:
		return c.v.CreateEventInAuthEvents && k.StateKey == ""
	case typePowerLevels:
		return k.StateKey == ""
	case typeMember:
		if k.StateKey == c.sender {
			return true
		}
	}
	if ev.Type() != typeMember {
		return false
	}
	target, _ := ev.StateKey()
	content := ev.Content()
	switch k.Type {
	case typeMember:
		if k.StateKey == target {
			return true
		}
		if c.v.RestrictedJoins && ev.Membership() == "join" {
			via, ok := contentString(content, "join_authorised_via_users_server")
			return ok && via == k.StateKey
		}
		return false
	case typeJoinRules:
		switch ev.Membership() {
		case "join", "invite", "knock":
			return k.StateKey == ""
		}
		return false
	case typeThirdPartyInvite:
		if ev.Membership() != "invite" {
			return false
		}
		tok := topLevel(content, "third_party_invite").Get("signed.token")
		return tok.Type == gjson.String && tok.Str == k.StateKey
	}
	return false
}
