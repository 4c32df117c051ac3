package syncapi

import (
	"context"
	"sort"
)

// Membership queries for the device lists in /sync and /keys/changes and
// for the user directory. They read the reader's membership table, so they
// see what /sync has applied.

// MembershipChange is a user's current membership in a room and the room
// event position where it last changed.
type MembershipChange struct {
	UserID, RoomID, Membership string
	Pos                        int64
}

// Memberships returns the current memberships in the rooms.
func (s *SyncAPI) Memberships(ctx context.Context, roomIDs []string) ([]MembershipChange, error) {
	var out []MembershipChange
	for _, roomID := range roomIDs {
		rows, err := s.db.QueryContext(ctx, `SELECT user_id, membership, pos FROM sync_memberships WHERE room_id = ?`, roomID)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			m := MembershipChange{RoomID: roomID}
			if err := rows.Scan(&m.UserID, &m.Membership, &m.Pos); err != nil {
				rows.Close()
				return nil, err
			}
			out = append(out, m)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// AllJoined returns every (user, room) pair with membership join.
func (s *SyncAPI) AllJoined(ctx context.Context) ([]MembershipChange, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT user_id, room_id, pos FROM sync_memberships WHERE membership = 'join'`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []MembershipChange
	for rows.Next() {
		m := MembershipChange{Membership: "join"}
		if err := rows.Scan(&m.UserID, &m.RoomID, &m.Pos); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// DeviceListChanges works out the device_lists section of a sync for
// userID between the room event positions since and upto, given the users
// whose keys changed in that window (keyChanged). changed: users sharing
// a joined room with userID whose keys changed, who joined a shared room,
// or who share a room userID joined; left: users who no longer share any
// room, because they or userID left one. Rooms are not restricted to
// encrypted ones (a superset, which clients accept).
func (s *SyncAPI) DeviceListChanges(ctx context.Context, userID string, since, upto int64, keyChanged []string) (changed, left []string, err error) {
	rooms, err := s.JoinedRooms(ctx, userID)
	if err != nil {
		return nil, nil, err
	}
	ms, err := s.Memberships(ctx, rooms)
	if err != nil {
		return nil, nil, err
	}
	shared := map[string]bool{userID: true}
	myJoin := map[string]int64{}
	for _, m := range ms {
		if m.UserID == userID {
			myJoin[m.RoomID] = m.Pos
		}
	}
	ch := map[string]bool{}
	for _, m := range ms {
		if m.Membership != "join" {
			continue
		}
		shared[m.UserID] = true
		if since > 0 && m.UserID != userID && ((m.Pos > since && m.Pos <= upto) || (myJoin[m.RoomID] > since && myJoin[m.RoomID] <= upto)) {
			ch[m.UserID] = true
		}
	}
	for _, u := range keyChanged {
		if shared[u] {
			ch[u] = true
		}
	}
	lf := map[string]bool{}
	if since > 0 {
		// Rooms userID left, and shared rooms others left, in the window.
		rows, err := s.db.QueryContext(ctx, `SELECT room_id FROM sync_memberships WHERE user_id = ? AND membership IN ('leave', 'ban') AND pos > ? AND pos <= ?`, userID, since, upto)
		if err != nil {
			return nil, nil, err
		}
		var gone []string
		for rows.Next() {
			var r string
			if err := rows.Scan(&r); err != nil {
				rows.Close()
				return nil, nil, err
			}
			gone = append(gone, r)
		}
		rows.Close()
		goneMs, err := s.Memberships(ctx, gone)
		if err != nil {
			return nil, nil, err
		}
		for _, m := range append(goneMs, ms...) {
			if m.UserID == userID || shared[m.UserID] {
				continue
			}
			if m.Membership == "join" || (m.Pos > since && m.Pos <= upto) {
				lf[m.UserID] = true
			}
		}
	}
	return sortedKeys(ch), sortedKeys(lf), nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
