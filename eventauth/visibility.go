package eventauth

import (
	"github.com/gomatrixlib/gomatrixlib/event"
)

// History visibility settings (content.history_visibility of
// m.room.history_visibility).
const (
	VisibilityWorldReadable = "world_readable"
	VisibilityShared        = "shared"
	VisibilityInvited       = "invited"
	VisibilityJoined        = "joined"
)

// HistoryVisibility returns the setting an m.room.history_visibility event
// makes: its content.history_visibility when that is one of the four known
// values, and "shared" (the spec's default) for nil, a missing value or an
// unknown one.
func HistoryVisibility(ev *event.PDU) string {
	if ev == nil {
		return VisibilityShared
	}
	s, _ := contentString(ev.Content(), "history_visibility")
	switch s {
	case VisibilityWorldReadable, VisibilityInvited, VisibilityJoined:
		return s
	}
	return VisibilityShared
}

// Viewer is a user who wants to see an event.
type Viewer struct {
	// UserID is the user.
	UserID string
	// JoinedLater reports whether the user's membership was join at some
	// point after the event. It decides "shared" visibility. A server that
	// keeps no membership history may pass whether the user is joined now.
	JoinedLater bool
}

// UserMaySee reports whether viewer may see ev under the room's history
// visibility (client-server API, "Room History Visibility", server
// behaviour). before is the room state before ev (the state ev was
// authorised against):
//
//  1. world_readable: allow;
//  2. the user's membership was join: allow;
//  3. shared, and the user joined at some point after the event: allow;
//  4. the user's membership was invite and the setting invited: allow;
//  5. otherwise deny.
//
// For an m.room.history_visibility event the setting before and the one it
// makes both count, and for the user's own m.room.member event the
// membership before and the one it makes both count: either allowing is
// enough. A nil before is an empty state.
func UserMaySee(ev *event.PDU, before VisibilityState, viewer Viewer) bool {
	if before == nil {
		before = StateMap(nil)
	}
	visBefore, visAfter := visibilities(ev, before)
	memBefore := membershipOf(before.Member(viewer.UserID))
	memAfter := memBefore
	if sk, ok := ev.StateKey(); ok && ev.Type() == typeMember && sk == viewer.UserID {
		memAfter = ev.Membership()
	}
	for _, vis := range [2]string{visBefore, visAfter} {
		for _, m := range [2]string{memBefore, memAfter} {
			if userAllowed(vis, m, viewer.JoinedLater) {
				return true
			}
		}
	}
	return false
}

func userAllowed(vis, membership string, joinedLater bool) bool {
	switch {
	case vis == VisibilityWorldReadable:
		return true
	case membership == "join":
		return true
	case vis == VisibilityShared && joinedLater:
		return true
	case vis == VisibilityInvited && membership == "invite":
		return true
	}
	return false
}

// ServerMaySee reports whether the server serverName may be sent ev (for
// backfill, /event and similar federation reads), given the room state
// before ev. With world_readable or shared visibility it may; with invited
// it may if one of its users was invited or joined; with joined, if one of
// its users was joined. As for users, a history visibility event counts
// with the setting before and after it, and a member event for one of the
// server's users with the membership before and after it. The caller still
// checks that the server is, or was, in the room at all. A nil before is an
// empty state.
func ServerMaySee(ev *event.PDU, before MemberLister, serverName string) bool {
	if before == nil {
		before = StateMap(nil)
	}
	visBefore, visAfter := visibilities(ev, before)
	needJoin := true
	for _, vis := range [2]string{visBefore, visAfter} {
		switch vis {
		case VisibilityWorldReadable, VisibilityShared:
			return true
		case VisibilityInvited:
			needJoin = false
		}
	}
	ok := func(m string) bool { return m == "join" || (!needJoin && m == "invite") }
	if sk, isState := ev.StateKey(); isState && ev.Type() == typeMember && domainOf(sk) == serverName {
		if ok(ev.Membership()) {
			return true
		}
	}
	for userID, m := range before.Members() {
		if domainOf(userID) == serverName && ok(membershipOf(m)) {
			return true
		}
	}
	return false
}

// visibilities returns the history visibility before ev and the one after
// it (the same unless ev is a history visibility event).
func visibilities(ev *event.PDU, before VisibilityState) (string, string) {
	visBefore := HistoryVisibility(before.HistoryVisibility())
	visAfter := visBefore
	if sk, ok := ev.StateKey(); ok && sk == "" && ev.Type() == typeHistoryVisibility {
		visAfter = HistoryVisibility(ev)
	}
	return visBefore, visAfter
}
