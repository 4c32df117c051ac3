package syncapi

import (
	"context"
	"database/sql"
	"errors"

	"github.com/tidwall/gjson"
)

// visible applies the room's history visibility (client-server API, "Room
// History Visibility", server behaviour) to the event at stream position
// pos for userID, from the events the sync reader keeps in stream order:
// the setting in force before the event (for an m.room.history_visibility
// event, its own setting counts too) and the user's membership at the
// event (their own member event included).
//
//  1. world_readable: visible;
//  2. the user's membership at the event was join: visible;
//  3. shared (also when unset or unknown): visible if the user joined at
//     the event or at any later point;
//  4. invited: visible if the membership at the event was invite;
//  5. otherwise (joined): hidden.
//
// Each check is a lookup by key (the sync_events_state index).
func (s *SyncAPI) visible(ctx context.Context, roomID, userID string, pos int64, raw string) (bool, error) {
	setting, err := s.settingBefore(ctx, roomID, pos)
	if err != nil {
		return false, err
	}
	ev := gjson.Parse(raw)
	if ev.Get("type").Str == "m.room.history_visibility" && ev.Get("state_key").Str == "" {
		// Either setting allowing is enough: take the more open one.
		if own := knownSetting(ev.Get("content.history_visibility").Str); rank(own) > rank(setting) {
			setting = own
		}
	}
	if setting == "world_readable" {
		return true, nil
	}
	membership, err := s.membershipAt(ctx, roomID, userID, pos)
	if err != nil {
		return false, err
	}
	return s.decide(ctx, roomID, userID, pos, setting, membership)
}

// settingBefore returns the history visibility in force before position
// pos.
func (s *SyncAPI) settingBefore(ctx context.Context, roomID string, pos int64) (string, error) {
	var hv string
	err := s.db.QueryRowContext(ctx, `SELECT json FROM sync_events WHERE room_id = ? AND type = 'm.room.history_visibility' AND state_key = '' AND pos < ? ORDER BY pos DESC LIMIT 1`,
		roomID, pos).Scan(&hv)
	switch {
	case err == nil:
		return knownSetting(gjson.Get(hv, "content.history_visibility").Str), nil
	case errors.Is(err, sql.ErrNoRows):
		return "shared", nil
	}
	return "", err
}

// membershipAt returns the user's membership at position pos (their
// member event at pos included), "" for none.
func (s *SyncAPI) membershipAt(ctx context.Context, roomID, userID string, pos int64) (string, error) {
	var m string
	err := s.db.QueryRowContext(ctx, `SELECT json FROM sync_events WHERE room_id = ? AND type = 'm.room.member' AND state_key = ? AND pos <= ? ORDER BY pos DESC LIMIT 1`,
		roomID, userID, pos).Scan(&m)
	switch {
	case err == nil:
		return gjson.Get(m, "content.membership").Str, nil
	case errors.Is(err, sql.ErrNoRows):
		return "", nil
	}
	return "", err
}

// visibleRun is visible for a run of the room's events with no other
// event of the room between them (positions ascending): the setting and
// membership are read once, before the first, and carried along the run
// through its own history visibility and member events.
func (s *SyncAPI) visibleRun(ctx context.Context, roomID, userID string, pos []int64, raws []string) ([]bool, error) {
	out := make([]bool, len(pos))
	if len(pos) == 0 {
		return out, nil
	}
	setting, err := s.settingBefore(ctx, roomID, pos[0])
	if err != nil {
		return nil, err
	}
	membership, err := s.membershipAt(ctx, roomID, userID, pos[0]-1)
	if err != nil {
		return nil, err
	}
	for i, raw := range raws {
		ev := gjson.Parse(raw)
		typ := ev.Get("type").Str
		sk := ev.Get("state_key")
		if typ == "m.room.member" && sk.Exists() && sk.Str == userID {
			membership = ev.Get("content.membership").Str
		}
		// As in visible: the event's own setting counts for itself; a
		// state event's sets the one in force for the events after it.
		effective := setting
		isHV := typ == "m.room.history_visibility" && sk.Str == ""
		if isHV {
			if own := knownSetting(ev.Get("content.history_visibility").Str); rank(own) > rank(effective) {
				effective = own
			}
		}
		if out[i], err = s.decide(ctx, roomID, userID, pos[i], effective, membership); err != nil {
			return nil, err
		}
		if isHV && sk.Exists() {
			setting = knownSetting(ev.Get("content.history_visibility").Str)
		}
	}
	return out, nil
}

// decide applies the rules given the setting in force and the user's
// membership at the event.
func (s *SyncAPI) decide(ctx context.Context, roomID, userID string, pos int64, setting, membership string) (bool, error) {
	if setting == "world_readable" || membership == "join" {
		return true, nil
	}
	switch setting {
	case "shared":
		rows, err := s.db.QueryContext(ctx, `SELECT json FROM sync_events WHERE room_id = ? AND type = 'm.room.member' AND state_key = ? AND pos > ? ORDER BY pos`,
			roomID, userID, pos)
		if err != nil {
			return false, err
		}
		defer rows.Close()
		for rows.Next() {
			var later string
			if err := rows.Scan(&later); err != nil {
				return false, err
			}
			if gjson.Get(later, "content.membership").Str == "join" {
				return true, nil
			}
		}
		return false, rows.Err()
	case "invited":
		return membership == "invite", nil
	}
	return false, nil
}

// knownSetting maps unknown history visibility values to "shared", as the
// spec says.
func knownSetting(v string) string {
	switch v {
	case "world_readable", "shared", "invited", "joined":
		return v
	}
	return "shared"
}

func rank(v string) int {
	switch v {
	case "world_readable":
		return 3
	case "shared":
		return 2
	case "invited":
		return 1
	}
	return 0
}
