package syncapi

import (
	"context"
	"encoding/json"
	"time"
)

// ephemeral returns a joined room's typing and receipt events that
// changed in (since, latest], or all of them when full is set.
func (s *SyncAPI) ephemeral(ctx context.Context, roomID, userID string, since, latest Pos, full bool) ([]json.RawMessage, error) {
	out := []json.RawMessage{}
	if full || since.Typing < latest.Typing {
		rows, err := s.db.QueryContext(ctx, `SELECT user_id, expires_ts, pos FROM sync_typing WHERE room_id = ?`, roomID)
		if err != nil {
			return nil, err
		}
		changed := false
		typing := []string{}
		now := time.Now().UnixMilli()
		for rows.Next() {
			var u string
			var exp, pos int64
			if err := rows.Scan(&u, &exp, &pos); err != nil {
				rows.Close()
				return nil, err
			}
			if pos > since.Typing && pos <= latest.Typing {
				changed = true
			}
			if exp > now {
				typing = append(typing, u)
			}
		}
		rows.Close()
		if (full && len(typing) > 0) || (!full && changed) {
			b, _ := json.Marshal(map[string]any{"type": "m.typing", "content": map[string]any{"user_ids": typing}})
			out = append(out, b)
		}
	}
	if full || since.Receipts < latest.Receipts {
		from := since.Receipts
		if full {
			from = 0
		}
		rows, err := s.db.QueryContext(ctx, `SELECT user_id, type, thread_id, event_id, ts FROM sync_receipts WHERE room_id = ? AND pos > ? AND pos <= ?`,
			roomID, from, latest.Receipts)
		if err != nil {
			return nil, err
		}
		content := map[string]map[string]map[string]map[string]any{}
		for rows.Next() {
			var u, typ, thread, eventID string
			var ts int64
			if err := rows.Scan(&u, &typ, &thread, &eventID, &ts); err != nil {
				rows.Close()
				return nil, err
			}
			if typ == "m.read.private" && u != userID {
				continue
			}
			if content[eventID] == nil {
				content[eventID] = map[string]map[string]map[string]any{}
			}
			if content[eventID][typ] == nil {
				content[eventID][typ] = map[string]map[string]any{}
			}
			r := map[string]any{"ts": ts}
			if thread != "" {
				r["thread_id"] = thread
			}
			content[eventID][typ][u] = r
		}
		rows.Close()
		if len(content) > 0 {
			b, _ := json.Marshal(map[string]any{"type": "m.receipt", "content": content})
			out = append(out, b)
		}
	}
	return out, nil
}

// accountData returns the user's account data changed in (since, upto]:
// per room, and global.
func (s *SyncAPI) accountData(ctx context.Context, userID string, since, upto int64) (map[string][]json.RawMessage, []json.RawMessage, error) {
	rooms, global := map[string][]json.RawMessage{}, []json.RawMessage{}
	if since >= upto {
		return rooms, global, nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT room_id, type, content FROM sync_account_data WHERE user_id = ? AND pos > ? AND pos <= ?`, userID, since, upto)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var roomID, typ, content string
		if err := rows.Scan(&roomID, &typ, &content); err != nil {
			return nil, nil, err
		}
		b, _ := json.Marshal(map[string]any{"type": typ, "content": json.RawMessage(content)})
		if roomID == "" {
			global = append(global, b)
		} else {
			rooms[roomID] = append(rooms[roomID], b)
		}
	}
	return rooms, global, rows.Err()
}

// AccountData returns one piece of account data (room "" for global).
func (s *SyncAPI) AccountData(ctx context.Context, userID, roomID, typ string) (json.RawMessage, bool, error) {
	var content string
	err := s.db.QueryRowContext(ctx, `SELECT content FROM sync_account_data WHERE user_id = ? AND room_id = ? AND type = ?`, userID, roomID, typ).Scan(&content)
	if isNoRows(err) {
		return nil, false, nil
	}
	return json.RawMessage(content), err == nil, err
}

// presence returns the presence, changed in (since, upto], of the users
// who share a joined room with the user, and the user's own.
func (s *SyncAPI) presence(ctx context.Context, userID string, since, upto int64) ([]json.RawMessage, error) {
	out := []json.RawMessage{}
	if since >= upto {
		return out, nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT user_id, presence, status_msg, last_active_ts FROM sync_presence WHERE pos > ? AND pos <= ?
		AND (user_id = ? OR user_id IN (SELECT b.user_id FROM sync_memberships a JOIN sync_memberships b ON a.room_id = b.room_id
		WHERE a.user_id = ? AND a.membership = 'join' AND b.membership = 'join'))`, since, upto, userID, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var p PresenceEntry
		if err := rows.Scan(&p.UserID, &p.Presence, &p.StatusMsg, &p.LastActiveTS); err != nil {
			return nil, err
		}
		b, _ := json.Marshal(map[string]any{"type": "m.presence", "sender": p.UserID, "content": PresenceContent(p)})
		out = append(out, b)
	}
	return out, rows.Err()
}

// PresenceContent is the content of an m.presence event.
func PresenceContent(p PresenceEntry) map[string]any {
	c := map[string]any{"presence": p.Presence}
	if p.LastActiveTS > 0 {
		ago := max(time.Now().UnixMilli()-p.LastActiveTS, 0)
		c["last_active_ago"] = ago
		c["currently_active"] = p.Presence == "online" && ago < 5*60*1000
	}
	if p.StatusMsg != nil {
		c["status_msg"] = *p.StatusMsg
	}
	return c
}

// Presence returns a user's stored presence.
func (s *SyncAPI) Presence(ctx context.Context, userID string) (PresenceEntry, bool, error) {
	p := PresenceEntry{UserID: userID}
	err := s.db.QueryRowContext(ctx, `SELECT presence, status_msg, last_active_ts FROM sync_presence WHERE user_id = ?`, userID).Scan(&p.Presence, &p.StatusMsg, &p.LastActiveTS)
	if isNoRows(err) {
		return p, false, nil
	}
	return p, err == nil, err
}

// toDeviceLimit bounds the to-device messages of one response.
const toDeviceLimit = 100

// toDevice returns the device's messages in (since, upto], at most
// toDeviceLimit, and the position to continue from. Messages at or before
// since were delivered (the client synced with a token past them) and are
// deleted.
func (s *SyncAPI) toDevice(ctx context.Context, userID, deviceID string, since, upto int64) ([]json.RawMessage, int64, error) {
	out := []json.RawMessage{}
	if deviceID == "" {
		return out, upto, nil
	}
	// Delete what the client acknowledged, once per new acknowledgement.
	key := userID + "\x00" + deviceID
	s.mu.Lock()
	acked := s.toDeviceAcked[key]
	s.mu.Unlock()
	if since > acked {
		if _, err := s.db.ExecContext(ctx, `DELETE FROM sync_to_device WHERE user_id = ? AND device_id = ? AND id <= ?`, userID, deviceID, since); err != nil {
			return nil, 0, err
		}
		s.mu.Lock()
		s.toDeviceAcked[key] = max(s.toDeviceAcked[key], since)
		s.mu.Unlock()
	}
	if since >= upto {
		return out, upto, nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, sender, type, content FROM sync_to_device WHERE user_id = ? AND device_id = ? AND id > ? AND id <= ? ORDER BY id LIMIT ?`,
		userID, deviceID, since, upto, toDeviceLimit)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var last int64
	for rows.Next() {
		var sender, typ, content string
		if err := rows.Scan(&last, &sender, &typ, &content); err != nil {
			return nil, 0, err
		}
		b, _ := json.Marshal(map[string]any{"sender": sender, "type": typ, "content": json.RawMessage(content)})
		out = append(out, b)
	}
	if len(out) == toDeviceLimit {
		return out, last, rows.Err()
	}
	return out, upto, rows.Err()
}

// DeviceListChanges returns the users, the user or sharing a joined room
// with them, whose devices changed in (since, upto].
func (s *SyncAPI) DeviceListChanges(ctx context.Context, userID string, since, upto int64) ([]string, error) {
	out := []string{}
	if since >= upto {
		return out, nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT user_id FROM sync_device_lists WHERE pos > ? AND pos <= ?
		AND (user_id = ? OR user_id IN (SELECT b.user_id FROM sync_memberships a JOIN sync_memberships b ON a.room_id = b.room_id
		WHERE a.user_id = ? AND a.membership = 'join' AND b.membership = 'join'))`, since, upto, userID, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}
