package syncapi

import (
	"context"
)

// Membership queries for the room and user directories. They read the reader's membership table, so they
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
