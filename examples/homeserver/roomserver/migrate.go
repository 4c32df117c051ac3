package roomserver

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/gomatrixlib/gomatrixlib/eventauth"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/db"
	"github.com/tidwall/gjson"
)

// migrate converts a database of the first schema, where every rs_events
// row carried the full state after it as JSON (state_after), to snapshots.
// It does nothing on a database without that column. The whole conversion
// is one transaction: a crash leaves the old schema, and the next start
// migrates again.
//
// Room by room, in storage order, each event's state is compared with the
// state after its first previous event: equal states share the snapshot,
// added or replaced entries become a delta (a full snapshot at the chain
// bound, as for new events), and a state that lost entries, which the old
// code never wrote, becomes a full snapshot.
func migrate(d *db.DB, log *slog.Logger) error {
	var probe string
	if err := d.QueryRow(`SELECT snapshot FROM rs_events WHERE 1 = 0`).Scan(&probe); errors.Is(err, sql.ErrNoRows) {
		return nil // the current schema
	} else if err2 := d.QueryRow(`SELECT state_after FROM rs_events WHERE 1 = 0`).Scan(&probe); !errors.Is(err2, sql.ErrNoRows) {
		return fmt.Errorf("rs_events has neither a snapshot nor a state_after column: %v; %v", err, err2)
	}
	start := time.Now()
	tx, err := d.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, q := range []string{
		`ALTER TABLE rs_events ADD COLUMN snapshot BIGINT NOT NULL DEFAULT 0`,
		`ALTER TABLE rs_rooms ADD COLUMN snapshot BIGINT NOT NULL DEFAULT 0`,
	} {
		if _, err := tx.Exec(q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	rooms, err := roomIDs(tx)
	if err != nil {
		return err
	}
	events := 0
	for _, roomID := range rooms {
		n, err := migrateRoom(tx, roomID)
		if err != nil {
			return fmt.Errorf("room %s: %w", roomID, err)
		}
		events += n
	}
	if _, err := tx.Exec(`ALTER TABLE rs_events DROP COLUMN state_after`); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	log.Info("roomserver: migrated per-event state to snapshots", "rooms", len(rooms), "events", events, "took", time.Since(start))
	// SQLite keeps the dropped column's pages as free pages in the file;
	// give them back. Failing to is not an error: the space is reused.
	if !d.Postgres {
		if _, err := d.Exec(`VACUUM`); err != nil {
			log.Warn("roomserver: VACUUM after the migration failed", "err", err)
		}
	}
	return nil
}

func roomIDs(tx *db.Tx) ([]string, error) {
	return db.Strings(tx.Query(`SELECT room_id FROM rs_rooms ORDER BY room_id`))
}

// migratedState is an event's state during the migration.
type migratedState struct {
	raw     string // the state_after JSON
	snap    int64
	entries []stateEntry // sorted
}

func migrateRoom(tx *db.Tx, roomID string) (int, error) {
	type row struct {
		nid              int64
		eventID, js, raw string
	}
	byEvent := map[string]int64{} // event ID -> snapshot, for the room's events so far
	var last *migratedState
	var lastEvent string
	n := 0
	for after := int64(0); ; {
		// Read a page into memory, then write: one statement at a time on
		// the transaction's connection.
		rows, err := tx.Query(`SELECT nid, event_id, json, state_after FROM rs_events WHERE room_id = ? AND nid > ? ORDER BY nid LIMIT 200`, roomID, after)
		if err != nil {
			return n, err
		}
		var page []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.nid, &r.eventID, &r.js, &r.raw); err != nil {
				rows.Close()
				return n, err
			}
			page = append(page, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return n, err
		}
		if len(page) == 0 {
			break
		}
		for _, r := range page {
			after = r.nid
			var prev *migratedState
			if p := gjson.Get(r.js, "prev_events.0"); p.Exists() {
				prevID := p.Str
				switch {
				case last != nil && prevID == lastEvent:
					prev = last
				default:
					ps, ok := byEvent[prevID]
					if !ok {
						return n, fmt.Errorf("event %s: previous event %s not migrated before it", r.eventID, prevID)
					}
					var raw string
					if err := tx.QueryRow(`SELECT state_after FROM rs_events WHERE event_id = ?`, prevID).Scan(&raw); err != nil {
						return n, err
					}
					entries, err := parseOldState(raw)
					if err != nil {
						return n, fmt.Errorf("event %s: %w", prevID, err)
					}
					prev = &migratedState{raw: raw, snap: ps, entries: entries}
				}
			}
			cur := &migratedState{raw: r.raw}
			if prev != nil && prev.raw == r.raw {
				cur.snap, cur.entries = prev.snap, prev.entries
			} else {
				entries, err := parseOldState(r.raw)
				if err != nil {
					return n, fmt.Errorf("event %s: %w", r.eventID, err)
				}
				cur.entries = entries
				parent, changes := int64(0), entries
				if prev != nil {
					if ch, ok := entryChanges(prev.entries, entries); ok {
						parent, changes = prev.snap, ch
					}
				}
				if parent != 0 && len(changes) == 0 {
					cur.snap = prev.snap
				} else {
					added := len(changes)
					if parent != 0 {
						added = len(entries) - len(prev.entries)
					}
					if cur.snap, err = writeSnapshot(tx, roomID, parent, changes, added); err != nil {
						return n, err
					}
				}
			}
			if _, err := tx.Exec(`UPDATE rs_events SET snapshot = ? WHERE nid = ?`, cur.snap, r.nid); err != nil {
				return n, err
			}
			byEvent[r.eventID] = cur.snap
			last, lastEvent = cur, r.eventID
			n++
		}
	}
	// The current state is the state after the newest forward extremity.
	var extJSON string
	if err := tx.QueryRow(`SELECT extremities FROM rs_rooms WHERE room_id = ?`, roomID).Scan(&extJSON); err != nil {
		return n, err
	}
	var ext []string
	_ = json.Unmarshal([]byte(extJSON), &ext)
	if len(ext) > 0 {
		if snap, ok := byEvent[ext[0]]; ok {
			if _, err := tx.Exec(`UPDATE rs_rooms SET snapshot = ? WHERE room_id = ?`, snap, roomID); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// parseOldState reads a state_after column: a JSON list of entries.
func parseOldState(raw string) ([]stateEntry, error) {
	var entries []stateEntry
	if err := json.Unmarshal([]byte(raw), &entries); err != nil {
		return nil, fmt.Errorf("unreadable state_after: %w", err)
	}
	seen := make(map[eventauth.StateKey]bool, len(entries))
	for _, e := range entries {
		k := eventauth.StateKey{Type: e.Type, StateKey: e.StateKey}
		if e.Type == "" || e.EventID == "" || seen[k] {
			return nil, fmt.Errorf("state_after has an empty or repeated entry %q %q", e.Type, e.StateKey)
		}
		seen[k] = true
	}
	sortEntries(entries)
	return entries, nil
}

// entryChanges returns the entries of next that are new or differ from
// prev (both sorted), and false if next lacks a key prev has (a delta
// cannot remove keys).
func entryChanges(prev, next []stateEntry) ([]stateEntry, bool) {
	var out []stateEntry
	i := 0
	for _, e := range next {
		for i < len(prev) && compareEntries(prev[i], e) < 0 {
			return nil, false // prev[i]'s key is missing from next
		}
		if i < len(prev) && compareEntries(prev[i], e) == 0 {
			if prev[i].EventID != e.EventID {
				out = append(out, e)
			}
			i++
			continue
		}
		out = append(out, e)
	}
	if i < len(prev) {
		return nil, false
	}
	return out, true
}
