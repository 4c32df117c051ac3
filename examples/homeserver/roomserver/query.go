package roomserver

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/eventauth"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/db"
	"github.com/gomatrixlib/gomatrixlib/hashing"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
)

// ErrUnknownEvent is returned for events the server does not have.
var ErrUnknownEvent = errors.New("roomserver: unknown event")

// Event returns a stored event.
func (rs *RoomServer) Event(eventID string) (*event.PDU, error) {
	rs.mu.Lock()
	p := rs.cache[eventID]
	rs.mu.Unlock()
	if p != nil {
		return p, nil
	}
	var raw, roomID string
	err := rs.db.QueryRow(`SELECT json, room_id FROM rs_events WHERE event_id = ?`, eventID).Scan(&raw, &roomID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s", ErrUnknownEvent, eventID)
	}
	if err != nil {
		return nil, err
	}
	rules, err := rs.RoomVersion(roomID)
	if err != nil {
		return nil, err
	}
	p, err = event.Parse(rules, []byte(raw))
	if err != nil {
		return nil, err
	}
	rs.remember(p)
	return p, nil
}

// RoomVersion returns the rules of a room.
func (rs *RoomServer) RoomVersion(roomID string) (roomversion.Rules, error) {
	if rules, ok := rs.cachedVersion(roomID); ok {
		return rules, nil
	}
	info, err := rs.roomInfo(roomID)
	if err != nil {
		return roomversion.Rules{}, err
	}
	rules, err := roomversion.Get(info.version)
	if err != nil {
		return roomversion.Rules{}, err
	}
	rs.mu.Lock()
	if len(rs.versions) >= 10*cacheMaxRooms {
		clear(rs.versions)
	}
	rs.versions[roomID] = rules
	rs.mu.Unlock()
	return rules, nil
}

// CurrentState returns the room's current state.
func (rs *RoomServer) CurrentState(roomID string) (eventauth.StateMap, error) {
	if _, err := rs.RoomVersion(roomID); err != nil {
		return nil, err
	}
	ids, err := db.Strings(rs.db.Query(`SELECT event_id FROM rs_state WHERE room_id = ?`, roomID))
	if err != nil {
		return nil, err
	}
	state := eventauth.StateMap{}
	for _, id := range ids {
		p, err := rs.Event(id)
		if err != nil {
			return nil, err
		}
		state.Add(p)
	}
	return state, nil
}

// LatestEvents returns the room's forward extremities and greatest depth.
func (rs *RoomServer) LatestEvents(roomID string) (extremities []string, depth int64, err error) {
	info, err := rs.roomInfo(roomID)
	if err != nil {
		return nil, 0, err
	}
	return info.extremities, info.depth, nil
}

// ErrEventNotInRoom is returned by state queries naming an event of
// another room.
var ErrEventNotInRoom = errors.New("roomserver: event is not in this room")

// eventSnapshot returns the room and snapshot of a stored event.
func (rs *RoomServer) eventSnapshot(eventID string) (roomID string, snap int64, err error) {
	err = rs.db.QueryRow(`SELECT room_id, snapshot FROM rs_events WHERE event_id = ?`, eventID).Scan(&roomID, &snap)
	if errors.Is(err, sql.ErrNoRows) {
		return "", 0, fmt.Errorf("%w: %s", ErrUnknownEvent, eventID)
	}
	if err == nil && snap == outlierSnap {
		return "", 0, fmt.Errorf("%w: the state at %s is not known", ErrUnknownEvent, eventID)
	}
	return roomID, snap, err
}

// StateAfter returns the state after an event, as (type, state key) to
// event ID. It reads the event's snapshot: a full snapshot and at most
// maxHops-1 deltas on it.
func (rs *RoomServer) StateAfter(eventID string) (map[eventauth.StateKey]string, error) {
	roomID, snap, err := rs.eventSnapshot(eventID)
	if err != nil {
		return nil, err
	}
	return rs.stateAt(roomID, eventID, snap)
}

// StateAfterInRoom is StateAfter for an event that must be in roomID: an
// event of another room gives ErrEventNotInRoom, an unknown one
// ErrUnknownEvent.
func (rs *RoomServer) StateAfterInRoom(roomID, eventID string) (map[eventauth.StateKey]string, error) {
	room, snap, err := rs.eventSnapshot(eventID)
	if err != nil {
		return nil, err
	}
	if room != roomID {
		return nil, fmt.Errorf("%w: %s is not in %s", ErrEventNotInRoom, eventID, roomID)
	}
	return rs.stateAt(roomID, eventID, snap)
}

func (rs *RoomServer) stateAt(roomID, eventID string, snap int64) (map[eventauth.StateKey]string, error) {
	entries, err := loadSnapshot(rs.db, roomID, snap)
	if err != nil {
		return nil, fmt.Errorf("state after %s: %w", eventID, err)
	}
	out := make(map[eventauth.StateKey]string, len(entries))
	for _, e := range entries {
		out[eventauth.StateKey{Type: e.Type, StateKey: e.StateKey}] = e.EventID
	}
	return out, nil
}

// StateEntryAfter returns the event holding key in the state after an
// event of roomID, and whether there is one. It reads the snapshot chain
// newest first and stops at the first row holding the key.
func (rs *RoomServer) StateEntryAfter(roomID, eventID string, key eventauth.StateKey) (string, bool, error) {
	room, snap, err := rs.eventSnapshot(eventID)
	if err != nil {
		return "", false, err
	}
	if room != roomID {
		return "", false, fmt.Errorf("%w: %s is not in %s", ErrEventNotInRoom, eventID, roomID)
	}
	ids, err := lookupSnapshot(rs.db, roomID, snap, []eventauth.StateKey{key})
	if err != nil {
		return "", false, fmt.Errorf("state after %s: %w", eventID, err)
	}
	id, ok := ids[key]
	return id, ok, nil
}

// CurrentStateFor returns the given entries of the room's current state
// (absent ones are left out), reading each by key: what building and
// checking an event needs, without the rest of the state.
func (rs *RoomServer) CurrentStateFor(roomID string, keys []eventauth.StateKey) (eventauth.StateMap, error) {
	if _, err := rs.RoomVersion(roomID); err != nil {
		return nil, err
	}
	ids, err := rs.currentIDs(roomID, keys)
	if err != nil {
		return nil, err
	}
	state := make(eventauth.StateMap, len(ids))
	for k, id := range ids {
		p, err := rs.Event(id)
		if err != nil {
			return nil, err
		}
		state[k] = p
	}
	return state, nil
}

// CurrentStateEvent returns the event holding (evType, stateKey) in the
// room's current state, or nil if there is none.
func (rs *RoomServer) CurrentStateEvent(roomID, evType, stateKey string) (*event.PDU, error) {
	k := eventauth.StateKey{Type: evType, StateKey: stateKey}
	st, err := rs.CurrentStateFor(roomID, []eventauth.StateKey{k})
	if err != nil {
		return nil, err
	}
	return st[k], nil
}

// StateKeysFor lists the current-state entries to read for building an
// event: its auth events (eventauth.AuthEventsNeeded), the create event
// and, for a state event, the entry it replaces.
func StateKeysFor(rules roomversion.Rules, evType, sender string, stateKey *string, content []byte) []eventauth.StateKey {
	return stateKeysFor(rules, evType, sender, stateKey, content)
}

// History returns up to limit events of the room stored before position
// before (0: from the newest), newest first, and the position to continue
// from (0 when there is nothing older).
func (rs *RoomServer) History(roomID string, before int64, limit int) ([]*event.PDU, int64, error) {
	if before <= 0 {
		before = 1 << 62
	}
	rows, err := rs.db.Query(`SELECT nid, event_id FROM rs_events WHERE room_id = ? AND nid < ? AND snapshot <> -1 ORDER BY nid DESC LIMIT ?`, roomID, before, limit)
	if err != nil {
		return nil, 0, err
	}
	type item struct {
		nid int64
		id  string
	}
	var items []item
	for rows.Next() {
		var it item
		if err := rows.Scan(&it.nid, &it.id); err != nil {
			rows.Close()
			return nil, 0, err
		}
		items = append(items, it)
	}
	rows.Close()
	out := make([]*event.PDU, 0, len(items))
	var next int64
	for _, it := range items {
		p, err := rs.Event(it.id)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, p)
		next = it.nid
	}
	if len(items) < limit {
		next = 0
	}
	return out, next, nil
}

// HasState reports whether the event is stored with its state (not only
// as an outlier).
func (rs *RoomServer) HasState(eventID string) bool {
	var snap int64
	err := rs.db.QueryRow(`SELECT snapshot FROM rs_events WHERE event_id = ?`, eventID).Scan(&snap)
	return err == nil && snap != outlierSnap
}

// StateBeforeEvent returns the state before a stored event: the
// resolution of the states after its previous events, or, when those are
// not known (the first event of a room we joined through another server),
// the state after the event without the event itself.
func (rs *RoomServer) StateBeforeEvent(ctx context.Context, eventID string) (eventauth.StateMap, error) {
	ev, err := rs.Event(eventID)
	if err != nil {
		return nil, err
	}
	if !rs.HasState(eventID) {
		return nil, fmt.Errorf("%w: the state at %s is not known", ErrUnknownEvent, eventID)
	}
	if len(rs.missingPrevs(ev)) == 0 {
		return rs.stateBefore(ctx, ev.Rules(), ev, nil)
	}
	after, err := rs.StateAfter(eventID)
	if err != nil {
		return nil, err
	}
	if sk, ok := ev.StateKey(); ok {
		k := eventauth.StateKey{Type: ev.Type(), StateKey: sk}
		if after[k] == eventID {
			delete(after, k)
		}
	}
	return rs.loadState(after)
}

// AuthChain returns the events of the auth chains of the given events
// (not the events themselves unless one is in another's chain), in
// increasing depth.
func (rs *RoomServer) AuthChain(ids []string) ([]*event.PDU, error) {
	seen := map[string]bool{}
	var out []*event.PDU
	queue := []string{}
	for _, id := range ids {
		ev, err := rs.Event(id)
		if err != nil {
			return nil, err
		}
		queue = append(queue, ev.AuthEventIDs()...)
	}
	for len(queue) > 0 {
		id := queue[0]
		queue = queue[1:]
		if seen[id] {
			continue
		}
		seen[id] = true
		ev, err := rs.Event(id)
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
		queue = append(queue, ev.AuthEventIDs()...)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Depth() < out[j].Depth() })
	return out, nil
}

// Rooms returns the IDs of the rooms the room server has.
func (rs *RoomServer) Rooms() ([]string, error) {
	return db.Strings(rs.db.Query(`SELECT room_id FROM rs_rooms ORDER BY room_id`))
}

// JoinedServers returns the servers with a joined member in the room's
// current state.
func (rs *RoomServer) JoinedServers(roomID string) ([]string, error) {
	state, err := rs.CurrentState(roomID)
	if err != nil {
		return nil, err
	}
	return joinedServers(state), nil
}

// StoreInvite keeps an invite another server sent for one of our users in
// a room we are not in: the event is stored without state and published,
// with the room state the inviter gave (stripped events), so that the sync
// reader shows the invite.
func (rs *RoomServer) StoreInvite(ctx context.Context, rules roomversion.Rules, ev *event.PDU, inviteRoomState []json.RawMessage) error {
	if _, err := rs.db.Exec(`INSERT INTO rs_rooms (room_id, version, extremities, depth) VALUES (?, ?, ?, ?) ON CONFLICT(room_id) DO NOTHING`,
		ev.RoomID(), rules.ID, "[]", 0); err != nil {
		return err
	}
	rs.forgetRoom(ev.RoomID())
	if err := rs.storeOutlier(rules, ev); err != nil {
		return err
	}
	return rs.publish(ctx, &Output{RoomID: ev.RoomID(), RoomVersion: rules.ID, EventID: ev.EventID(), Event: ev.JSON(),
		AddsState: []string{ev.EventID()}, InviteRoomState: inviteRoomState})
}

// NewBuilder describes a new event in the room on its current forward
// extremities, citing the auth events the selection algorithm names from
// the current state (with reference hashes for room versions that need
// them). It returns the builder and the current state, against which the
// caller checks the built event.
func (rs *RoomServer) NewBuilder(roomID, evType, sender string, stateKey *string, content []byte) (*event.Builder, eventauth.StateMap, roomversion.Rules, error) {
	rules, err := rs.RoomVersion(roomID)
	if err != nil {
		return nil, nil, rules, err
	}
	state, err := rs.CurrentState(roomID)
	if err != nil {
		return nil, nil, rules, err
	}
	prev, depth, err := rs.LatestEvents(roomID)
	if err != nil {
		return nil, nil, rules, err
	}
	sk := ""
	if stateKey != nil {
		sk = *stateKey
	}
	var auth []string
	for _, k := range eventauth.AuthEventsNeeded(rules, evType, sk, sender, content) {
		if p := state[k]; p != nil {
			auth = append(auth, p.EventID())
		}
	}
	b := &event.Builder{RoomID: roomID, Type: evType, Sender: sender, StateKey: stateKey, Content: content,
		PrevEvents: prev, AuthEvents: auth, Depth: min(depth+1, rules.MaxDepth)}
	if !rules.EventReferencesWithHashes {
		return b, state, rules, nil
	}
	b.ReferenceHashes = map[string][]byte{}
	for _, id := range append(append([]string{}, prev...), auth...) {
		p, err := rs.Event(id)
		if err != nil {
			return nil, nil, rules, err
		}
		h, err := hashing.ReferenceHash(rules, p.JSON())
		if err != nil {
			return nil, nil, rules, err
		}
		b.ReferenceHashes[id] = h
	}
	return b, state, rules, nil
}

// PendingInvite returns the newest invite (or rejection) of userID to a
// room we are not in, stored by StoreInvite, or nil. It is nil once the
// room's state knows the user.
func (rs *RoomServer) PendingInvite(roomID, userID string) *event.PDU {
	if state, err := rs.CurrentState(roomID); err == nil && state.Member(userID) != nil {
		return nil
	}
	ids, err := db.Strings(rs.db.Query(`SELECT event_id FROM rs_events WHERE room_id = ? AND snapshot = -1 ORDER BY nid DESC`, roomID))
	if err != nil {
		return nil
	}
	for _, id := range ids {
		p, err := rs.Event(id)
		if err != nil {
			continue
		}
		if sk, _ := p.StateKey(); p.Type() == "m.room.member" && sk == userID {
			if p.Membership() == "invite" {
				return p
			}
			return nil
		}
	}
	return nil
}
