package syncapi

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"slices"
	"strconv"
	"time"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/db"
	"github.com/tidwall/gjson"
)

// Token is a room event position written as "s<pos>" (for /messages).
func Token(pos int64) string { return "s" + strconv.FormatInt(pos, 10) }

// ParseToken reads a /messages or /sync token and returns its room event
// position; "" is position 0.
func ParseToken(t string) (int64, error) {
	p, err := ParsePos(t)
	return p.Events, err
}

// Request is a /sync request.
type Request struct {
	UserID   string
	DeviceID string
	Since    Pos
	// Initial is set for a sync without a since token.
	Initial       bool
	Timeout       time.Duration
	TimelineLimit int
	// Filter, when set, narrows what the response carries.
	Filter *Filter
}

// Response is the /sync response body.
type Response struct {
	NextBatch   string      `json:"next_batch"`
	Rooms       Rooms       `json:"rooms"`
	Presence    Events      `json:"presence"`
	AccountData Events      `json:"account_data"`
	ToDevice    Events      `json:"to_device"`
	DeviceLists DeviceLists `json:"device_lists"`
	// OneTimeKeyCounts and UnusedFallbackKeyTypes are always present
	// (clients' crypto only updates what it is given).
	OneTimeKeyCounts       map[string]int `json:"device_one_time_keys_count"`
	UnusedFallbackKeyTypes []string       `json:"device_unused_fallback_key_types"`
}

// DeviceLists names users whose devices changed, or who no longer share
// an encrypted room.
type DeviceLists struct {
	Changed []string `json:"changed"`
	Left    []string `json:"left"`
}

// Rooms groups rooms by the user's membership.
type Rooms struct {
	Join   map[string]*JoinedRoom  `json:"join"`
	Invite map[string]*InvitedRoom `json:"invite"`
	Leave  map[string]*JoinedRoom  `json:"leave"`
}

// JoinedRoom is a joined (or left) room's section.
type JoinedRoom struct {
	State               Events              `json:"state"`
	Timeline            Timeline            `json:"timeline"`
	Ephemeral           Events              `json:"ephemeral"`
	AccountData         Events              `json:"account_data"`
	UnreadNotifications UnreadNotifications `json:"unread_notifications"`
}

// UnreadNotifications are the room's notification counts.
type UnreadNotifications struct {
	Highlight    int `json:"highlight_count"`
	Notification int `json:"notification_count"`
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

func (r *Response) empty() bool {
	return len(r.Rooms.Join) == 0 && len(r.Rooms.Invite) == 0 && len(r.Rooms.Leave) == 0 &&
		len(r.Presence.Events) == 0 && len(r.AccountData.Events) == 0 && len(r.ToDevice.Events) == 0 &&
		len(r.DeviceLists.Changed) == 0 && len(r.DeviceLists.Left) == 0
}

// Sync answers a /sync request. An incremental sync with nothing for the
// user waits, up to req.Timeout, for something that is.
func (s *SyncAPI) Sync(ctx context.Context, req Request) (*Response, error) {
	if req.TimelineLimit <= 0 {
		req.TimelineLimit = 20
	}
	latest := s.LatestPos()
	since := req.Since.clamp(latest)
	initial := req.Initial
	deadline := time.Now().Add(req.Timeout)
	var ms memberships
	for {
		resp, err := s.build(ctx, req, since, latest, initial, &ms)
		if err != nil {
			return nil, err
		}
		if initial || !resp.empty() || !time.Now().Before(deadline) {
			return resp, nil
		}
		// Nothing in (since, latest] for this user: the next build
		// need only read what comes after latest, and only in the
		// streams that move (build skips the others).
		since = latest
		latest = s.waitBeyond(ctx, latest, deadline)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
}

// memberships are a user's membership rows up to a room event position,
// kept across the builds of one long-poll: they change only with the room
// events.
type memberships struct {
	rows  []membershipRow
	upto  int64
	valid bool
}

// build makes the response for the streams between since and latest.
//
// A stream whose position did not move past since is not read (its range
// is empty), except what a newly joined room shows in full; ms carries the
// user's memberships from an earlier build at the same room event
// position.
func (s *SyncAPI) build(ctx context.Context, req Request, since, latest Pos, initial bool, ms *memberships) (*Response, error) {
	next := latest
	resp := &Response{Rooms: Rooms{Join: map[string]*JoinedRoom{}, Invite: map[string]*InvitedRoom{}, Leave: map[string]*JoinedRoom{}},
		Presence: Events{Events: []json.RawMessage{}}, AccountData: Events{Events: []json.RawMessage{}}, ToDevice: Events{Events: []json.RawMessage{}},
		DeviceLists: DeviceLists{Changed: []string{}, Left: []string{}}, OneTimeKeyCounts: map[string]int{}, UnusedFallbackKeyTypes: []string{}}
	if !ms.valid || ms.upto != latest.Events {
		rows, err := s.db.QueryContext(ctx, `SELECT room_id, membership, pos FROM sync_memberships WHERE user_id = ? AND pos <= ?`, req.UserID, latest.Events)
		if err != nil {
			return nil, err
		}
		ms.rows, ms.upto, ms.valid = ms.rows[:0], latest.Events, false
		for rows.Next() {
			var m membershipRow
			if err := rows.Scan(&m.roomID, &m.membership, &m.pos); err != nil {
				rows.Close()
				return nil, err
			}
			ms.rows = append(ms.rows, m)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, err
		}
		ms.valid = true
	}
	roomData, globalData, err := s.accountData(ctx, req.UserID, since.AccountData, latest.AccountData)
	if err != nil {
		return nil, err
	}
	resp.AccountData.Events = globalData
	for _, m := range ms.rows {
		if !req.Filter.roomAllowed(m.roomID) {
			continue
		}
		changed := m.pos > since.Events
		switch m.membership {
		case "join":
			newlyJoined := initial || changed
			var room *JoinedRoom
			if newlyJoined || since.Events < latest.Events {
				if room, err = s.roomSection(ctx, m.roomID, since.Events, latest.Events, req.TimelineLimit, newlyJoined, req); err != nil {
					return nil, err
				}
			} else {
				// No room event since: what roomSection gives for an
				// empty range.
				room = &JoinedRoom{State: Events{Events: []json.RawMessage{}},
					Timeline: Timeline{Events: []json.RawMessage{}, PrevBatch: Token(latest.Events)}}
			}
			if room.Ephemeral.Events, err = s.ephemeral(ctx, m.roomID, req.UserID, since, latest, initial || changed); err != nil {
				return nil, err
			}
			room.AccountData.Events = roomData[m.roomID]
			if room.AccountData.Events == nil {
				room.AccountData.Events = []json.RawMessage{}
			}
			if newlyJoined || len(room.Timeline.Events) > 0 || len(room.Ephemeral.Events) > 0 || len(room.AccountData.Events) > 0 {
				resp.Rooms.Join[m.roomID] = room
			}
		case "invite":
			if !changed && !initial {
				continue
			}
			// Stripped state needs no other member than the invitee.
			st, err := s.stateAt(ctx, m.roomID, 0, latest.Events, []string{req.UserID})
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
			if !changed || initial {
				continue
			}
			room, err := s.roomSection(ctx, m.roomID, since.Events, m.pos, req.TimelineLimit, false, req)
			if err != nil {
				return nil, err
			}
			room.Ephemeral.Events, room.AccountData.Events = []json.RawMessage{}, []json.RawMessage{}
			resp.Rooms.Leave[m.roomID] = room
		}
	}
	if resp.Presence.Events, err = s.presence(ctx, req.UserID, since.Presence, latest.Presence); err != nil {
		return nil, err
	}
	if !initial {
		if resp.DeviceLists.Changed, err = s.DeviceListChanges(ctx, req.UserID, since.DeviceLists, latest.DeviceLists); err != nil {
			return nil, err
		}
	}
	if resp.ToDevice.Events, next.ToDevice, err = s.toDevice(ctx, req.UserID, req.DeviceID, since.ToDevice, latest.ToDevice); err != nil {
		return nil, err
	}
	resp.NextBatch = next.String()
	return resp, nil
}

// maxScan bounds how many events one room's timeline looks at to fill a
// filtered timeline.
const maxScan = 5000

// roomSection builds the timeline of events in (since, upto] (the last
// limit of them that pass the filter) and, when full is set or the
// timeline is limited, the state before the timeline (with lazy-loaded
// members, only the members the timeline needs).
func (s *SyncAPI) roomSection(ctx context.Context, roomID string, since, upto int64, limit int, full bool, req Request) (*JoinedRoom, error) {
	var tf, sf EventFilter
	lazy := false
	if req.Filter != nil {
		tf, sf, lazy = req.Filter.Timeline, req.Filter.State, req.Filter.LazyLoadMembers
	}
	type item struct {
		pos     int64
		raw, id string
	}
	var items []item
	batch := limit + 1
	if !tf.empty() {
		batch = 200
	}
	cursor, scanned, more := upto, 0, false
	for len(items) <= limit {
		rows, err := s.db.QueryContext(ctx, `SELECT pos, json, event_id FROM sync_events WHERE room_id = ? AND pos > ? AND pos <= ? ORDER BY pos DESC LIMIT ?`,
			roomID, since, cursor, batch)
		if err != nil {
			return nil, err
		}
		n := 0
		for rows.Next() && len(items) <= limit {
			var it item
			if err := rows.Scan(&it.pos, &it.raw, &it.id); err != nil {
				rows.Close()
				return nil, err
			}
			n++
			cursor = it.pos - 1
			if tf.empty() || tf.Matches(gjson.Get(it.raw, "type").Str, gjson.Get(it.raw, "sender").Str) {
				items = append(items, it)
			}
		}
		rows.Close()
		scanned += n
		if n < batch {
			break
		}
		if scanned >= maxScan {
			more = true
			break
		}
	}
	// History visibility: events the user may not see are left out of the
	// timeline (the state section is not filtered).
	// Without a timeline filter the items are a run of the room's events
	// with none left out between them, checked in one pass.
	var shown []bool
	if tf.empty() {
		pos, raws := make([]int64, len(items)), make([]string, len(items))
		for i, it := range items {
			pos[len(items)-1-i], raws[len(items)-1-i] = it.pos, it.raw
		}
		run, err := s.visibleRun(ctx, roomID, req.UserID, pos, raws)
		if err != nil {
			return nil, err
		}
		shown = make([]bool, len(items))
		for i := range items {
			shown[i] = run[len(items)-1-i]
		}
	}
	kept := items[:0]
	for i, it := range items {
		ok := shown != nil && shown[i]
		if shown == nil {
			var err error
			if ok, err = s.visible(ctx, roomID, req.UserID, it.pos, it.raw); err != nil {
				return nil, err
			}
		}
		if ok {
			kept = append(kept, it)
		}
	}
	items = kept
	room := &JoinedRoom{State: Events{Events: []json.RawMessage{}}, Timeline: Timeline{Events: []json.RawMessage{}}}
	if len(items) > limit || more {
		room.Timeline.Limited = true
		items = items[:min(len(items), limit)]
	}
	first := upto + 1 // position of the oldest timeline event
	stored := make([]Stored, 0, len(items))
	senders := map[string]bool{req.UserID: true}
	for i := len(items) - 1; i >= 0; i-- {
		stored = append(stored, Stored{ID: items[i].id, JSON: []byte(items[i].raw)})
		senders[gjson.Get(items[i].raw, "sender").Str] = true
	}
	var err error
	if room.Timeline.Events, err = s.ClientEvents(ctx, roomID, stored); err != nil {
		return nil, err
	}
	if len(items) > 0 {
		first = items[len(items)-1].pos
	}
	room.Timeline.PrevBatch = Token(first - 1)
	if full || room.Timeline.Limited || (lazy && len(items) > 0) {
		// full: the state at the start of the timeline; a gappy
		// incremental timeline: the state changes in the gap; with lazy
		// loading, only the members the timeline needs (for an incremental
		// timeline without a gap, only them).
		var members []string // nil: every member
		if lazy {
			for u := range senders {
				members = append(members, u)
			}
		}
		after := int64(0)
		if !full && room.Timeline.Limited {
			after = since
		}
		st, err := s.stateAt(ctx, roomID, after, first-1, members)
		if err != nil {
			return nil, err
		}
		for _, e := range st {
			ev := gjson.ParseBytes(e)
			typ := ev.Get("type").Str
			if !full && !room.Timeline.Limited && typ != "m.room.member" {
				continue // only the lazy-loaded members
			}
			if !sf.empty() && !sf.Matches(typ, ev.Get("sender").Str) {
				continue
			}
			room.State.Events = append(room.State.Events, e)
		}
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
	stored := make([]Stored, 0, len(events))
	for _, f := range events {
		stored = append(stored, Stored{ID: f.eventID, JSON: []byte(f.raw)})
	}
	evs, err := s.ClientEvents(ctx, roomID, stored)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(evs))
	for i, e := range evs {
		out[i] = e
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
	return db.Strings(s.db.QueryContext(ctx, `SELECT room_id FROM sync_memberships WHERE user_id = ? AND membership = 'join'`, userID))
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
	var stored []Stored
	last := from
	type row struct {
		pos          int64
		raw, eventID string
	}
	var read []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.pos, &r.raw, &r.eventID); err != nil {
			rows.Close()
			return nil, "", "", err
		}
		read = append(read, r)
	}
	if err := rows.Err(); err != nil {
		rows.Close()
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
		stored = append(stored, Stored{ID: r.eventID, JSON: []byte(r.raw)})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, "", "", err
	}
	if chunk, err = s.ClientEvents(ctx, roomID, stored); err != nil {
		return nil, "", "", err
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
