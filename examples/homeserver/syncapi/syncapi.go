// Package syncapi is a reader of the room server's output log. It keeps,
// for every room, the timeline in output-log order and the current state,
// and for every user their memberships, and answers /sync (with since
// tokens, timeline limits and long-polling) and /messages from them.
//
// Visibility is simplified: a user sees the events of rooms they are
// joined to, the invite state of rooms they are invited to, and the end of
// rooms they left; history_visibility is not applied.
package syncapi

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/db"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/logs"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/roomserver"
	"github.com/nats-io/nats.go"
	"github.com/tidwall/gjson"
)

const schema = `
CREATE TABLE IF NOT EXISTS sync_events (
	pos INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT UNIQUE NOT NULL,
	room_id TEXT NOT NULL, json TEXT NOT NULL, is_state INTEGER NOT NULL,
	type TEXT, state_key TEXT);
CREATE INDEX IF NOT EXISTS sync_events_room ON sync_events(room_id, pos);
CREATE TABLE IF NOT EXISTS sync_state (
	room_id TEXT NOT NULL, type TEXT NOT NULL, state_key TEXT NOT NULL,
	event_id TEXT NOT NULL, PRIMARY KEY (room_id, type, state_key));
CREATE TABLE IF NOT EXISTS sync_memberships (
	user_id TEXT NOT NULL, room_id TEXT NOT NULL, membership TEXT NOT NULL,
	pos BIGINT NOT NULL, PRIMARY KEY (user_id, room_id));
CREATE TABLE IF NOT EXISTS sync_invite_state (
	room_id TEXT PRIMARY KEY, json TEXT NOT NULL);
`

// SyncAPI is the sync reader.
type SyncAPI struct {
	db  *db.DB
	js  nats.JetStreamContext
	log *slog.Logger

	mu       sync.Mutex
	pos      Pos              // newest position applied, per stream
	applied  map[string]int64 // per log besides the room events: last sequence applied
	wake     chan struct{}
	consumer *logs.Consumer

	streamConsumers []*logs.Consumer
	// toDeviceAcked is, per user and device, the to-device position whose
	// messages this process already deleted as acknowledged.
	toDeviceAcked map[string]int64
}

// New prepares the tables.
func New(db *db.DB, js nats.JetStreamContext, log *slog.Logger) (*SyncAPI, error) {
	if _, err := db.Exec(schema + redactionSchema + streamSchema); err != nil {
		return nil, fmt.Errorf("syncapi: schema: %w", err)
	}
	if err := addStateKeyColumns(db); err != nil {
		return nil, fmt.Errorf("syncapi: adding the state key columns: %w", err)
	}
	// State at a position, by key: the newest state event per key at or
	// before the position, found by index.
	if _, err := db.Exec(`CREATE INDEX IF NOT EXISTS sync_events_state ON sync_events(room_id, type, state_key, pos)`); err != nil {
		return nil, fmt.Errorf("syncapi: schema: %w", err)
	}
	s := &SyncAPI{db: db, js: js, log: log, wake: make(chan struct{}), applied: map[string]int64{}, toDeviceAcked: map[string]int64{}}
	if err := db.QueryRow(`SELECT COALESCE(MAX(pos), 0) FROM sync_events`).Scan(&s.pos.Events); err != nil {
		return nil, err
	}
	if err := s.loadStreamPositions(); err != nil {
		return nil, err
	}
	return s, nil
}

// Start consumes the output log with the durable consumer "syncapi".
func (s *SyncAPI) Start() error {
	c, err := logs.Consume(s.js, logs.OutputStream, logs.OutputSubject, "syncapi", 64, s.log,
		func(_ context.Context, data []byte) error { return s.apply(data) })
	if err != nil {
		return err
	}
	s.consumer = c
	return s.startStreams()
}

// Stop stops consuming.
func (s *SyncAPI) Stop() {
	if s.consumer != nil {
		s.consumer.Stop()
	}
	for _, c := range s.streamConsumers {
		c.Stop()
	}
}

// apply stores one output entry. It is idempotent: a redelivered entry is
// ignored.
func (s *SyncAPI) apply(data []byte) error {
	var out roomserver.Output
	if err := json.Unmarshal(data, &out); err != nil {
		s.log.Warn("syncapi: dropping malformed output entry", "err", err)
		return nil
	}
	ev := gjson.ParseBytes(out.Event)
	sk := ev.Get("state_key")
	tx, err := s.db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	isState := 0
	if sk.Exists() {
		isState = 1
	}
	// The room state that came with the event (the state of a room we
	// joined through another server, or what state resolution changed)
	// goes in first, as state events, so that /sync shows the room's
	// state and memberships.
	for _, se := range out.StateEvents {
		if err := s.applyState(tx, out.RoomID, se.EventID, se.Event); err != nil {
			return err
		}
	}
	if len(out.InviteRoomState) > 0 {
		b, _ := json.Marshal(out.InviteRoomState)
		if _, err := tx.Exec(`INSERT INTO sync_invite_state (room_id, json) VALUES (?, ?)
			ON CONFLICT(room_id) DO UPDATE SET json = excluded.json`, out.RoomID, string(b)); err != nil {
			return err
		}
	}
	var pos int64
	var evType, stateKey any // NULL for a non-state event
	if sk.Exists() {
		evType, stateKey = ev.Get("type").Str, sk.Str
	}
	err = tx.QueryRow(`INSERT INTO sync_events (event_id, room_id, json, is_state, type, state_key) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT DO NOTHING RETURNING pos`, out.EventID, out.RoomID, string(out.Event), isState, evType, stateKey).Scan(&pos)
	if errors.Is(err, sql.ErrNoRows) {
		return nil // already applied
	}
	if err != nil {
		return err
	}
	if ev.Get("type").Str == "m.room.redaction" {
		if err := recordRedaction(tx, out.RoomVersion, out.EventID, out.Event); err != nil {
			return err
		}
	}
	if len(out.AddsState) > 0 && sk.Exists() {
		if _, err := tx.Exec(`INSERT INTO sync_state (room_id, type, state_key, event_id) VALUES (?, ?, ?, ?)
			ON CONFLICT(room_id, type, state_key) DO UPDATE SET event_id = excluded.event_id`,
			out.RoomID, ev.Get("type").Str, sk.Str, out.EventID); err != nil {
			return err
		}
		if ev.Get("type").Str == "m.room.member" {
			if _, err := tx.Exec(`INSERT INTO sync_memberships (user_id, room_id, membership, pos) VALUES (?, ?, ?, ?)
				ON CONFLICT(user_id, room_id) DO UPDATE SET membership = excluded.membership, pos = excluded.pos`,
				sk.Str, out.RoomID, ev.Get("content.membership").Str, pos); err != nil {
				return err
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	s.mu.Lock()
	s.pos.Events = pos
	close(s.wake)
	s.wake = make(chan struct{})
	s.mu.Unlock()
	return nil
}

// Latest returns the newest room event position applied.
func (s *SyncAPI) Latest() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pos.Events
}

// LatestPos returns the newest position of every stream.
func (s *SyncAPI) LatestPos() Pos {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pos
}

// waitBeyond blocks until some stream passes pos, the deadline passes or
// ctx ends, and returns the newest position.
func (s *SyncAPI) waitBeyond(ctx context.Context, pos Pos, deadline time.Time) Pos {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		s.mu.Lock()
		latest, wake := s.pos, s.wake
		s.mu.Unlock()
		if latest.after(pos) {
			return latest
		}
		select {
		case <-wake:
		case <-timer.C:
			return latest
		case <-ctx.Done():
			return latest
		}
	}
}

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

// applyState stores a state event that came with an output entry (not in
// the room's timeline order) unless it is stored.
func (s *SyncAPI) applyState(tx *db.Tx, roomID, eventID string, raw json.RawMessage) error {
	ev := gjson.ParseBytes(raw)
	sk := ev.Get("state_key")
	if eventID == "" || !sk.Exists() {
		return nil
	}
	var pos int64
	err := tx.QueryRow(`INSERT INTO sync_events (event_id, room_id, json, is_state, type, state_key) VALUES (?, ?, ?, 1, ?, ?)
		ON CONFLICT DO NOTHING RETURNING pos`, eventID, roomID, string(raw), ev.Get("type").Str, sk.Str).Scan(&pos)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := tx.Exec(`INSERT INTO sync_state (room_id, type, state_key, event_id) VALUES (?, ?, ?, ?)
		ON CONFLICT(room_id, type, state_key) DO UPDATE SET event_id = excluded.event_id`,
		roomID, ev.Get("type").Str, sk.Str, eventID); err != nil {
		return err
	}
	if ev.Get("type").Str == "m.room.member" {
		if _, err := tx.Exec(`INSERT INTO sync_memberships (user_id, room_id, membership, pos) VALUES (?, ?, ?, ?)
			ON CONFLICT(user_id, room_id) DO UPDATE SET membership = excluded.membership, pos = excluded.pos`,
			sk.Str, roomID, ev.Get("content.membership").Str, pos); err != nil {
			return err
		}
	}
	return nil
}

// addStateKeyColumns adds sync_events.type and state_key to a database made
// before they existed and fills them in from each state event's JSON, in
// one transaction.
func addStateKeyColumns(d *db.DB) error {
	var probe sql.NullString
	if err := d.QueryRow(`SELECT type FROM sync_events WHERE 1 = 0`).Scan(&probe); errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	tx, err := d.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, q := range []string{`ALTER TABLE sync_events ADD COLUMN type TEXT`, `ALTER TABLE sync_events ADD COLUMN state_key TEXT`} {
		if _, err := tx.Exec(q); err != nil {
			return err
		}
	}
	for after := int64(0); ; {
		rows, err := tx.Query(`SELECT pos, json FROM sync_events WHERE is_state = 1 AND pos > ? ORDER BY pos LIMIT 500`, after)
		if err != nil {
			return err
		}
		type row struct {
			pos int64
			raw string
		}
		var page []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.pos, &r.raw); err != nil {
				rows.Close()
				return err
			}
			page = append(page, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(page) == 0 {
			break
		}
		for _, r := range page {
			after = r.pos
			ev := gjson.Parse(r.raw)
			if _, err := tx.Exec(`UPDATE sync_events SET type = ?, state_key = ? WHERE pos = ?`, ev.Get("type").Str, ev.Get("state_key").Str, r.pos); err != nil {
				return err
			}
		}
	}
	return tx.Commit()
}
