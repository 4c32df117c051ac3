package eventauth

import (
	"github.com/tidwall/gjson"

	"github.com/gomatrixlib/gomatrixlib/roomversion"
)

// AuthEventsNeeded returns the state entries an event of type evType with
// the given state key, sender and content (JSON) cites as auth_events,
// following the auth events selection algorithm of the server-server API:
//
//   - m.room.create: nothing;
//   - the m.room.create event (room versions 1-11 only, see
//     roomversion.Rules.CreateEventInAuthEvents);
//   - m.room.power_levels and the sender's m.room.member;
//   - for m.room.member: the target's m.room.member; m.room.join_rules if
//     the membership is join, invite or knock; the m.room.third_party_invite
//     named by content.third_party_invite.signed.token for an invite; the
//     member event of content.join_authorised_via_users_server for a join
//     when the version has restricted joins.
//
// Entries are returned once each, in that order. Whether each entry exists
// in the room is for the caller to look up ("if any" in the spec). The
// content is read leniently: a content that is not a JSON object selects no
// membership-dependent entries.
func AuthEventsNeeded(rules roomversion.Rules, evType, stateKey, sender string, content []byte) []StateKey {
	if evType == typeCreate {
		return nil
	}
	out := make([]StateKey, 0, 7)
	add := func(k StateKey) {
		for _, have := range out {
			if have == k {
				return
			}
		}
		out = append(out, k)
	}
	if rules.CreateEventInAuthEvents {
		add(StateKey{Type: typeCreate})
	}
	add(StateKey{Type: typePowerLevels})
	add(StateKey{Type: typeMember, StateKey: sender})
	if evType != typeMember {
		return out
	}
	add(StateKey{Type: typeMember, StateKey: stateKey})
	membership := topLevel(content, "membership")
	if membership.Type != gjson.String {
		return out
	}
	switch membership.Str {
	case "join", "invite", "knock":
		add(StateKey{Type: typeJoinRules})
	}
	switch membership.Str {
	case "invite":
		tok := topLevel(content, "third_party_invite").Get("signed.token")
		if tok.Type == gjson.String {
			add(StateKey{Type: typeThirdPartyInvite, StateKey: tok.Str})
		}
	case "join":
		if rules.RestrictedJoins {
			via := topLevel(content, "join_authorised_via_users_server")
			if via.Type == gjson.String {
				add(StateKey{Type: typeMember, StateKey: via.Str})
			}
		}
	}
	return out
}
