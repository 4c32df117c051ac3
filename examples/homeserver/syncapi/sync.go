package syncapi

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/httputil"
	"github.com/tidwall/gjson"
)

// Token is a stream position written as "s<pos>".
func Token(pos int64) string { return "s" + strconv.FormatInt(pos, 10) }

// ParseToken reads a token; "" is position 0.
func ParseToken(t string) (int64, error) {
	if t == "" {
		return 0, nil
	}
	if !strings.HasPrefix(t, "s") {
		return 0, fmt.Errorf("syncapi: bad token %q", t)
	}
	n, err := strconv.ParseInt(t[1:], 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("syncapi: bad token %q", t)
	}
	return n, nil
}

// Request is a /sync request.
type Request struct {
	UserID        string
	Since         int64 // 0: initial sync
	Timeout       time.Duration
	TimelineLimit int
	// LazyLoadMembers (the filter's room.state.lazy_load_members): the
	// state sections carry only the member events of the timeline's
	// senders and of the user, not every member.
	LazyLoadMembers bool
}

// Response is the /sync response body.
type Response struct {
	NextBatch string `json:"next_batch"`
	Rooms     Rooms  `json:"rooms"`
}

// Rooms groups rooms by the user's membership.
type Rooms struct {
	Join   map[string]*JoinedRoom  `json:"join"`
	Invite map[string]*InvitedRoom `json:"invite"`
	Leave  map[string]*JoinedRoom  `json:"leave"`
}

// JoinedRoom is a joined (or left) room's section.
type JoinedRoom struct {
	State    Events   `json:"state"`
	Timeline Timeline `json:"timeline"`
}

// InvitedRoom is an invited room's section.
type InvitedRoom struct {
	InviteState Events `json:"invite_state"`
}

// Events is a list of client events.
type Events struct {
	Events []json.RawMessage `json:"events"`
}

// Timeline is a room timeline.
type Timeline struct {
	Events    []json.RawMessage `json:"events"`
	Limited   bool              `json:"limited"`
	PrevBatch string            `json:"prev_batch"`
}

type membershipRow struct {
	roomID, membership string
	pos                int64
}

// Sync answers a /sync request, long-polling up to req.Timeout for an
// incremental sync with nothing new.
func (s *SyncAPI) Sync(ctx context.Context, req Request) (*Response, error) {
	if req.TimelineLimit <= 0 {
		req.TimelineLimit = 20
	}
	latest := s.Latest()
	if req.Since > latest {
		req.Since = latest
	}
	if req.Since > 0 && req.Timeout > 0 {
		latest = s.waitBeyond(ctx, req.Since, req.Timeout)
	}
	resp := &Response{NextBatch: Token(latest), Rooms: Rooms{Join: map[string]*JoinedRoom{}, Invite: map[string]*InvitedRoom{}, Leave: map[string]*JoinedRoom{}}}
	var ms []membershipRow
	rows, err := s.db.QueryContext(ctx, `SELECT room_id, membership, pos FROM sync_memberships WHERE user_id = ? AND pos <= ?`, req.UserID, latest)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var m membershipRow
		if err := rows.Scan(&m.roomID, &m.membership, &m.pos); err != nil {
			rows.Close()
			return nil, err
		}
		ms = append(ms, m)
	}
	rows.Close()
	for _, m := range ms {
		changed := m.pos > req.Since
		switch m.membership {
		case "join":
			newlyJoined := req.Since == 0 || changed
			room, err := s.roomSection(ctx, req, m.roomID, req.Since, latest, newlyJoined)
			if err != nil {
				return nil, err
			}
			if newlyJoined || len(room.Timeline.Events) > 0 {
				resp.Rooms.Join[m.roomID] = room
			}
		case "invite":
			if !changed && req.Since > 0 {
				continue
			}
			// Stripped state needs no other member than the invitee.
			st, err := s.stateAt(ctx, m.roomID, 0, latest, []string{req.UserID})
			if err != nil {
				return nil, err
			}
			inv := strip(st, req.UserID)
			var remote string
			if err := s.db.QueryRowContext(ctx, `SELECT json FROM sync_invite_state WHERE room_id = ?`, m.roomID).Scan(&remote); err == nil {
				// An invite from another server to a room we are not in:
				// the room state it sent.
				var extra []json.RawMessage
				_ = json.Unmarshal([]byte(remote), &extra)
				inv = append(strip(rawList(extra), req.UserID), inv...)
			}
			resp.Rooms.Invite[m.roomID] = &InvitedRoom{InviteState: Events{Events: inv}}
		case "leave", "ban":
			if !changed || req.Since == 0 {
				continue
			}
			room, err := s.roomSection(ctx, req, m.roomID, req.Since, m.pos, false)
			if err != nil {
				return nil, err
			}
			resp.Rooms.Leave[m.roomID] = room
		}
	}
	return resp, nil
}

// roomSection builds the timeline of events in (since, upto] (the last
// req.TimelineLimit of them) and the state section: when full is set, the
// state at the start of the timeline; for a gappy incremental timeline,
// the state changes between since and the start of the timeline.
func (s *SyncAPI) roomSection(ctx context.Context, req Request, roomID string, since, upto int64, full bool) (*JoinedRoom, error) {
	limit := req.TimelineLimit
	rows, err := s.db.QueryContext(ctx, `SELECT pos, json, event_id FROM sync_events WHERE room_id = ? AND pos > ? AND pos <= ? ORDER BY pos DESC LIMIT ?`,
		roomID, since, upto, limit+1)
	if err != nil {
		return nil, err
	}
	type item struct {
		pos     int64
		raw, id string
	}
	var items []item
	for rows.Next() {
		var it item
		if err := rows.Scan(&it.pos, &it.raw, &it.id); err != nil {
			rows.Close()
			return nil, err
		}
		items = append(items, it)
	}
	rows.Close()
	// History visibility: events the user may not see are left out of the
	// timeline (the state section is not filtered).
	kept := items[:0]
	for _, it := range items {
		ok, err := s.visible(ctx, roomID, req.UserID, it.pos, it.raw)
		if err != nil {
			return nil, err
		}
		if ok {
			kept = append(kept, it)
		}
	}
	items = kept
	room := &JoinedRoom{State: Events{Events: []json.RawMessage{}}, Timeline: Timeline{Events: []json.RawMessage{}}}
	if len(items) > limit {
		room.Timeline.Limited = true
		items = items[:limit]
	}
	first := upto + 1 // position of the oldest timeline event
	var senders []string
	for i := len(items) - 1; i >= 0; i-- {
		room.Timeline.Events = append(room.Timeline.Events, httputil.ClientEvent([]byte(items[i].raw), roomID, items[i].id))
		if snd := gjson.Get(items[i].raw, "sender").Str; !slices.Contains(senders, snd) {
			senders = append(senders, snd)
		}
	}
	if len(items) > 0 {
		first = items[len(items)-1].pos
	}
	room.Timeline.PrevBatch = Token(first - 1)
	var members []string // nil: every member
	if req.LazyLoadMembers {
		members = append(senders, req.UserID)
	}
	var st [][]byte
	switch {
	case full:
		st, err = s.stateAt(ctx, roomID, 0, first-1, members)
	case room.Timeline.Limited:
		st, err = s.stateAt(ctx, roomID, since, first-1, members)
	}
	if err != nil {
		return nil, err
	}
	for _, e := range st {
		room.State.Events = append(room.State.Events, e)
	}
	return room, nil
}

// stateAt returns, in stream order, the newest state event per (type,
// state key) among the room's events in (after, upto]: with after 0 the
// state at upto, else the changes since after. members, when not nil,
// limits m.room.member events to those users, each read by key; the other
// members are not read at all.
func (s *SyncAPI) stateAt(ctx context.Context, roomID string, after, upto int64, members []string) ([][]byte, error) {
	type found struct {
		pos          int64
		raw, eventID string
	}
	var events []found
	// collect reads the events at the positions a "SELECT MAX(pos) ..."
	// subquery names.
	collect := func(newest string, args ...any) error {
		rows, err := s.db.QueryContext(ctx, `SELECT pos, json, event_id FROM sync_events WHERE pos IN (`+newest+`)`, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var f found
			if err := rows.Scan(&f.pos, &f.raw, &f.eventID); err != nil {
				return err
			}
			events = append(events, f)
		}
		return rows.Err()
	}
	const newest = `SELECT MAX(pos) FROM sync_events WHERE room_id = ? AND pos > ? AND pos <= ? AND `
	if members == nil {
		// The whole state: every key's newest event from the state index
		// (type >= '' steers SQLite to it), reading no message. Changes
		// since a position: the room's events in the gap.
		cond := `type IS NOT NULL GROUP BY type, state_key`
		if after == 0 {
			cond = `type >= '' GROUP BY type, state_key`
		}
		if err := collect(newest+cond, roomID, after, upto); err != nil {
			return nil, err
		}
	} else {
		// Two ranges of the (room_id, type, state_key, pos) index around
		// m.room.member, then one lookup per wanted member.
		if err := collect(newest+`type < 'm.room.member' GROUP BY type, state_key`, roomID, after, upto); err != nil {
			return nil, err
		}
		if err := collect(newest+`type > 'm.room.member' GROUP BY type, state_key`, roomID, after, upto); err != nil {
			return nil, err
		}
		for _, u := range slices.Compact(slices.Sorted(slices.Values(members))) {
			if err := collect(newest+`type = 'm.room.member' AND state_key = ?`, roomID, after, upto, u); err != nil {
				return nil, err
			}
		}
	}
	slices.SortFunc(events, func(a, b found) int { return cmp.Compare(a.pos, b.pos) })
	out := make([][]byte, 0, len(events))
	for _, f := range events {
		out = append(out, httputil.ClientEvent([]byte(f.raw), roomID, f.eventID))
	}
	return out, nil
}

// strip returns the stripped state an invitee sees.
func strip(state [][]byte, userID string) []json.RawMessage {
	out := []json.RawMessage{}
	for _, raw := range state {
		var e struct {
			Type     string          `json:"type"`
			StateKey string          `json:"state_key"`
			Sender   string          `json:"sender"`
			Content  json.RawMessage `json:"content"`
		}
		if json.Unmarshal(raw, &e) != nil {
			continue
		}
		switch e.Type {
		case "m.room.create", "m.room.name", "m.room.join_rules", "m.room.canonical_alias", "m.room.avatar", "m.room.topic", "m.room.encryption":
		case "m.room.member":
			if e.StateKey != userID {
				continue
			}
		default:
			continue
		}
		b, _ := json.Marshal(e)
		out = append(out, b)
	}
	return out
}

// JoinedRooms lists the rooms the user is joined to.
func (s *SyncAPI) JoinedRooms(ctx context.Context, userID string) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT room_id FROM sync_memberships WHERE user_id = ? AND membership = 'join'`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// Messages answers /rooms/{roomId}/messages: events of the room before
// (dir "b") or after (dir "f") the token, up to limit, and the next token.
// The caller checks that the user may see the room.
func (s *SyncAPI) Messages(ctx context.Context, roomID, userID string, from int64, dir string, limit int) (chunk []json.RawMessage, start, end string, err error) {
	if limit <= 0 || limit > 1000 {
		limit = 10
	}
	var rows *sql.Rows
	if dir == "f" {
		rows, err = s.db.QueryContext(ctx, `SELECT pos, json, event_id FROM sync_events WHERE room_id = ? AND pos > ? ORDER BY pos ASC LIMIT ?`, roomID, from, limit)
	} else {
		if from <= 0 {
			from = s.Latest()
		}
		rows, err = s.db.QueryContext(ctx, `SELECT pos, json, event_id FROM sync_events WHERE room_id = ? AND pos <= ? ORDER BY pos DESC LIMIT ?`, roomID, from, limit)
	}
	if err != nil {
		return nil, "", "", err
	}
	defer rows.Close()
	chunk = []json.RawMessage{}
	last := from
	type row struct {
		pos          int64
		raw, eventID string
	}
	var read []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.pos, &r.raw, &r.eventID); err != nil {
			return nil, "", "", err
		}
		read = append(read, r)
	}
	if err := rows.Err(); err != nil {
		return nil, "", "", err
	}
	rows.Close() // before the visibility lookups (SQLite has one connection)
	n := len(read)
	for _, r := range read {
		last = r.pos
		if ok, err := s.visible(ctx, roomID, userID, r.pos, r.raw); err != nil {
			return nil, "", "", err
		} else if !ok {
			continue // hidden by history visibility
		}
		chunk = append(chunk, httputil.ClientEvent([]byte(r.raw), roomID, r.eventID))
	}
	start = Token(from)
	if n < limit {
		return chunk, start, "", nil
	}
	if dir == "f" {
		return chunk, start, Token(last), nil
	}
	return chunk, start, Token(last - 1), nil
}

func rawList(in []json.RawMessage) [][]byte {
	out := make([][]byte, len(in))
	for i, r := range in {
		out[i] = r
	}
	return out
}
