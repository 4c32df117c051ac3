package roomserver

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/gomatrixlib/gomatrixlib/eventauth"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
)

// The room cache keeps in memory what every event of a room reads from
// rs_rooms and rs_state: the room's version, forward extremities, depth,
// current snapshot, and the current-state entries read by key. The room
// server is the only writer of those tables and the process the only one
// using the database, so the cache is exact when it is updated where the
// tables are written:
//
//   - store updates the room's row and, on the linear path, the one state
//     entry it wrote, after its transaction commits; off the linear path
//     (resolution, a join through another server) it drops the room's
//     state entries instead;
//   - the inserts that may create a room row (outliers, invites) drop the
//     room's row.
//
// A reader that missed the cache reads the database and fills the cache
// only if no write to the room happened in between (gen, bumped by every
// write), so a value read before a commit never lands in the cache after
// it. The version of a room never changes and is kept once read.

// roomRow is a room's rs_rooms row.
type roomRow struct {
	version     string
	extremities []string
	depth       int64
	snapshot    int64
}

type roomEntry struct {
	gen   uint64
	row   *roomRow                      // nil: not cached
	state map[eventauth.StateKey]string // "" for a key known to be absent
}

// cacheMaxRooms bounds the rooms the cache holds; past it the cache starts
// over (rows and entries are cheap to read again).
const cacheMaxRooms = 10000

// roomEntryLocked returns the room's cache entry, creating it; rs.mu must
// be held. Generations come from one counter, so an entry made after the
// cache started over never matches a generation read before.
func (rs *RoomServer) roomEntryLocked(roomID string) *roomEntry {
	e := rs.rooms[roomID]
	if e == nil {
		if len(rs.rooms) >= cacheMaxRooms {
			clear(rs.rooms)
		}
		rs.genSeq++
		e = &roomEntry{gen: rs.genSeq}
		rs.rooms[roomID] = e
	}
	return e
}

// bumpLocked marks a write to the room; rs.mu must be held.
func (rs *RoomServer) bumpLocked(e *roomEntry) {
	rs.genSeq++
	e.gen = rs.genSeq
}

// roomInfo returns the room's rs_rooms row, from the cache when it holds
// it; ErrUnknownRoom when there is none.
func (rs *RoomServer) roomInfo(roomID string) (roomRow, error) {
	rs.mu.Lock()
	e := rs.roomEntryLocked(roomID)
	if e.row != nil {
		r := *e.row
		rs.mu.Unlock()
		r.extremities = slices.Clone(r.extremities)
		return r, nil
	}
	gen := e.gen
	rs.mu.Unlock()
	var r roomRow
	var extJSON string
	err := rs.db.QueryRow(`SELECT version, extremities, depth, snapshot FROM rs_rooms WHERE room_id = ?`, roomID).Scan(&r.version, &extJSON, &r.depth, &r.snapshot)
	if errors.Is(err, sql.ErrNoRows) {
		return roomRow{}, fmt.Errorf("%w: %s", ErrUnknownRoom, roomID)
	}
	if err != nil {
		return roomRow{}, err
	}
	if err := json.Unmarshal([]byte(extJSON), &r.extremities); err != nil {
		return roomRow{}, fmt.Errorf("roomserver: extremities of %s: %w", roomID, err)
	}
	rs.mu.Lock()
	if e := rs.roomEntryLocked(roomID); e.gen == gen {
		c := r
		c.extremities = slices.Clone(r.extremities)
		e.row = &c
	}
	rs.mu.Unlock()
	return r, nil
}

// cachedVersion returns the rules of a room whose version is cached.
func (rs *RoomServer) cachedVersion(roomID string) (roomversion.Rules, bool) {
	rs.mu.Lock()
	v, ok := rs.versions[roomID]
	rs.mu.Unlock()
	return v, ok
}

// currentIDs reads keys of the room's current state (absent keys are left
// out), from the cache where it holds them and from rs_state otherwise.
func (rs *RoomServer) currentIDs(roomID string, keys []eventauth.StateKey) (map[eventauth.StateKey]string, error) {
	out := make(map[eventauth.StateKey]string, len(keys))
	var missing []eventauth.StateKey
	rs.mu.Lock()
	e := rs.roomEntryLocked(roomID)
	for _, k := range keys {
		id, ok := e.state[k]
		switch {
		case !ok:
			missing = append(missing, k)
		case id != "":
			out[k] = id
		}
	}
	gen := e.gen
	rs.mu.Unlock()
	if len(missing) == 0 {
		return out, nil
	}
	found := make(map[eventauth.StateKey]string, len(missing))
	for _, k := range missing {
		var id string
		err := rs.db.QueryRow(`SELECT event_id FROM rs_state WHERE room_id = ? AND type = ? AND state_key = ?`, roomID, k.Type, k.StateKey).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			found[k] = ""
			continue
		}
		if err != nil {
			return nil, err
		}
		found[k] = id
		out[k] = id
	}
	rs.mu.Lock()
	if e := rs.roomEntryLocked(roomID); e.gen == gen {
		if e.state == nil {
			e.state = map[eventauth.StateKey]string{}
		}
		for k, id := range found {
			e.state[k] = id
		}
	}
	rs.mu.Unlock()
	return out, nil
}

// stored updates the cache after store committed: the room's new row and,
// when set is true, the current-state entry written (linear path); with
// set false and stateChanged true the room's state entries are dropped.
func (rs *RoomServer) stored(roomID string, row roomRow, key *eventauth.StateKey, eventID string, stateChanged bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	e := rs.roomEntryLocked(roomID)
	rs.bumpLocked(e)
	row.extremities = slices.Clone(row.extremities)
	e.row = &row
	switch {
	case key != nil:
		if e.state != nil {
			e.state[*key] = eventID
		}
	case stateChanged:
		e.state = nil
	}
}

// forgetRoom drops the room's cached row and state.
func (rs *RoomServer) forgetRoom(roomID string) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	e := rs.roomEntryLocked(roomID)
	rs.bumpLocked(e)
	e.row, e.state = nil, nil
}
