// Package roomserver owns room state. It consumes the input log (events
// that writers want in rooms), checks each event (format, hashes and
// signatures, authorization against its auth events and against the state
// before it), stores accepted events with a reference to the state after
// each one, and appends an entry to the output log carrying the event and
// the state delta. Its query API answers what writers and readers need to
// know about rooms.
//
// Events of one room are processed in log order by a single durable
// consumer, so a restart resumes where processing stopped; reprocessing an
// event already stored republishes its output entry, which the output
// stream deduplicates by event ID.
//
// # State storage
//
// The state after an event is a snapshot: rs_events.snapshot names a row
// of rs_snapshots. A snapshot row is either full (parent 0: every entry of
// the state) or a delta (the entries that differ from its parent's state),
// and records its room, its number of hops to the full snapshot below it
// and the size of its whole state. Entries, sorted by (type, state key),
// are one binary blob per row (encodeEntries), not one row per entry.
//
//   - An event that changes no state (a message: most events) takes the
//     snapshot of its previous events. It writes no state at all.
//   - A state event's snapshot is a one-entry delta on the snapshot before
//     it, unless that one is already maxHops-1 (63) deltas from a full
//     snapshot: then the state is loaded and written as a new full
//     snapshot. Chains are never longer than 64 rows.
//   - Loading the state at an event reads the chain's headers in one
//     recursive query, then its rows by key: one full snapshot and at most
//     63 one-entry deltas, merged in one pass. Looking up one (type, state
//     key) reads the chain newest first and stops at the first row holding
//     the key (a binary search in each row).
//   - The room's current state is also kept by key in rs_state, with its
//     snapshot in rs_rooms.snapshot. Building and checking an event reads
//     only the entries its authorization needs (eventauth.AuthEventsNeeded,
//     the create event and the entry a state event replaces), by key, from
//     rs_state when the event builds on the current state (always, for
//     this server's own events) and from the snapshot chain otherwise.
//   - The event row, its snapshot, the forward extremities and the current
//     state are written in one transaction: a crash leaves both or neither.
//
// Why a bounded delta chain, and why blobs. Per-event work must not grow
// with the room: a message costs one reference, a state event one small
// row, plus a full snapshot every 64 state events (N entries written once
// per 64 changes; in a 10,000-member room about 0.8 MB, so some 12 KB per
// state event on average, and nothing per message). Reads stay bounded by
// the state plus 63 entries. Block lists shared between snapshots
// (Dendrite) or adaptive layers (Conduit) cost less per state event in
// very large rooms, and a path-copied tree would make it logarithmic, but
// each needs hashing, block management or tree code that a chain with a
// fixed bound does not. Storing a snapshot's entries as one blob instead of
// one row per entry (Synapse) keeps a full snapshot to one sequential write
// and read without per-row overhead and indexes, which is what makes
// writing one every 64 state events cheap.
//
// Deltas add or replace entries; they cannot remove one. No event of a
// single server removes a state entry; a state that lost entries (which
// state resolution could produce) must be stored as a full snapshot.
//
// Snapshots are read back strictly: a missing row, a row of another room, a
// chain longer than the bound or not in step, unreadable entries or a
// merged state whose size differs from the recorded one give
// ErrBrokenState, never a guessed state. A database of the first schema
// (the full state as JSON in every rs_events row) is converted on start by
// migrate.
package roomserver

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/eventauth"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/db"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/logs"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
	"github.com/gomatrixlib/gomatrixlib/signing"
	"github.com/nats-io/nats.go"
)

// Input is one entry of the input log.
type Input struct {
	RoomVersion string          `json:"room_version"`
	Event       json.RawMessage `json:"event"`
	// Txn, when set, is the client transaction that asked for the event.
	// The room server records it in the same database transaction as the
	// event, and drops a later event of the same client transaction (a
	// client's retry after a crash or a log outage), answering its waiter
	// with the first event's ID.
	Txn *Txn `json:"txn,omitempty"`
}

// Txn names a client transaction: its scope (user and device) and its ID,
// which the writer prefixes with the endpoint.
type Txn struct {
	UserID   string `json:"user_id"`
	DeviceID string `json:"device_id"`
	ID       string `json:"txn_id"`
}

// ErrLogUnavailable is returned by Submit when the input log cannot be
// reached; the event was not appended and the client may retry.
var ErrLogUnavailable = errors.New("roomserver: the input log is unreachable")

// verdict is what a waiter learns: the ID of the event that stands for
// its request (its own, or the first of its client transaction) or why it
// was rejected.
type verdict struct {
	eventID string
	err     error
}

// Output is one entry of the output log: an accepted event and the change
// it made to the room's current state.
type Output struct {
	RoomID       string          `json:"room_id"`
	RoomVersion  string          `json:"room_version"`
	EventID      string          `json:"event_id"`
	Event        json.RawMessage `json:"event"`
	AddsState    []string        `json:"adds_state_event_ids,omitempty"`
	RemovesState []string        `json:"removes_state_event_ids,omitempty"`
}

// ErrUnknownRoom is returned by queries about rooms the server does not
// have.
var ErrUnknownRoom = errors.New("roomserver: unknown room")

// RejectedError is the verdict on an event that failed a check.
type RejectedError struct{ Err error }

// Error describes the rejection.
func (e *RejectedError) Error() string { return "roomserver: event rejected: " + e.Err.Error() }

// Unwrap returns the failed check's error.
func (e *RejectedError) Unwrap() error { return e.Err }

// RoomServer is the room server component.
type RoomServer struct {
	db         *db.DB
	js         nats.JetStreamContext
	serverName string
	key        *signing.Key
	log        *slog.Logger

	mu      sync.Mutex
	waiters map[string][]chan verdict
	cache   map[string]*event.PDU

	consumer *logs.Consumer
}

const schema = `
CREATE TABLE IF NOT EXISTS rs_rooms (
	room_id TEXT PRIMARY KEY, version TEXT NOT NULL,
	extremities TEXT NOT NULL, depth BIGINT NOT NULL,
	snapshot BIGINT NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS rs_events (
	nid INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT UNIQUE NOT NULL,
	room_id TEXT NOT NULL, json TEXT NOT NULL, snapshot BIGINT NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS rs_events_room ON rs_events(room_id, nid);
CREATE TABLE IF NOT EXISTS rs_snapshots (
	id INTEGER PRIMARY KEY AUTOINCREMENT, room_id TEXT NOT NULL,
	parent BIGINT NOT NULL, hops INTEGER NOT NULL, size BIGINT NOT NULL,
	entries BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS rs_state (
	room_id TEXT NOT NULL, type TEXT NOT NULL, state_key TEXT NOT NULL,
	event_id TEXT NOT NULL, PRIMARY KEY (room_id, type, state_key));
CREATE TABLE IF NOT EXISTS rs_txns (
	user_id TEXT NOT NULL, device_id TEXT NOT NULL, txn_id TEXT NOT NULL,
	event_id TEXT NOT NULL, PRIMARY KEY (user_id, device_id, txn_id));
`

// New prepares the room server's tables. Call Start to consume the log.
func New(db *db.DB, js nats.JetStreamContext, serverName string, key *signing.Key, log *slog.Logger) (*RoomServer, error) {
	if _, err := db.Exec(schema); err != nil {
		return nil, fmt.Errorf("roomserver: schema: %w", err)
	}
	if err := migrate(db, log); err != nil {
		return nil, fmt.Errorf("roomserver: migrating to state snapshots: %w", err)
	}
	return &RoomServer{db: db, js: js, serverName: serverName, key: key, log: log,
		waiters: map[string][]chan verdict{}, cache: map[string]*event.PDU{}}, nil
}

// Start begins consuming the input log with the durable consumer
// "roomserver".
func (rs *RoomServer) Start() error {
	c, err := logs.Consume(rs.js, logs.InputStream, logs.InputSubject, "roomserver", 16, rs.log, rs.process)
	if err != nil {
		return err
	}
	rs.consumer = c
	return nil
}

// Stop stops consuming; unprocessed entries stay in the log.
func (rs *RoomServer) Stop() {
	if rs.consumer != nil {
		rs.consumer.Stop()
	}
}

// publishTimeout bounds the wait for the log's acknowledgement of an
// appended entry.
const publishTimeout = 5 * time.Second

// Submit appends the event (with the client transaction, when given) to
// the input log and waits for the room server's verdict. It returns the
// ID of the event that stands for the request: the event's own, or the
// first event of the same client transaction. A check that failed gives a
// *RejectedError; a log that cannot be reached gives an error wrapping
// ErrLogUnavailable, at once rather than after a timeout.
func (rs *RoomServer) Submit(ctx context.Context, rules roomversion.Rules, ev *event.PDU, txn *Txn) (string, error) {
	ch := make(chan verdict, 1)
	rs.mu.Lock()
	rs.waiters[ev.EventID()] = append(rs.waiters[ev.EventID()], ch)
	rs.mu.Unlock()
	data, err := json.Marshal(Input{RoomVersion: rules.ID, Event: ev.JSON(), Txn: txn})
	if err != nil {
		rs.dropWaiter(ev.EventID(), ch)
		return "", err
	}
	pctx, cancel := context.WithTimeout(ctx, publishTimeout)
	_, err = rs.js.Publish(logs.InputSubject, data, nats.MsgId(ev.EventID()), nats.Context(pctx))
	cancel()
	if err != nil {
		rs.dropWaiter(ev.EventID(), ch)
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		rs.log.Warn("roomserver: the input log is unreachable; refusing the event", "event_id", ev.EventID(), "err", err)
		return "", fmt.Errorf("%w: %w", ErrLogUnavailable, err)
	}
	select {
	case v := <-ch:
		return v.eventID, v.err
	case <-ctx.Done():
		rs.dropWaiter(ev.EventID(), ch)
		return "", ctx.Err()
	}
}

func (rs *RoomServer) dropWaiter(eventID string, ch chan verdict) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	ws := rs.waiters[eventID]
	for i, w := range ws {
		if w == ch {
			rs.waiters[eventID] = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(rs.waiters[eventID]) == 0 {
		delete(rs.waiters, eventID)
	}
}

// notify tells the event's waiters the verdict: nil err for accepted,
// with standsFor the ID of the event that stands for their request.
func (rs *RoomServer) notify(eventID, standsFor string, err error) {
	rs.mu.Lock()
	ws := rs.waiters[eventID]
	delete(rs.waiters, eventID)
	rs.mu.Unlock()
	for _, w := range ws {
		w <- verdict{eventID: standsFor, err: err}
	}
}

// TxnEvent returns the event recorded for a client transaction, if any.
func (rs *RoomServer) TxnEvent(ctx context.Context, txn Txn) (string, bool, error) {
	var id string
	err := rs.db.QueryRowContext(ctx, `SELECT event_id FROM rs_txns WHERE user_id = ? AND device_id = ? AND txn_id = ?`,
		txn.UserID, txn.DeviceID, txn.ID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	return id, err == nil, err
}

// VerifyKey implements signing.KeyLookup for our own key. Events from
// other servers are not accepted by this single-server example.
func (rs *RoomServer) VerifyKey(_ context.Context, server, keyID string, _ time.Time) (ed25519.PublicKey, error) {
	if server == rs.serverName && keyID == rs.key.KeyID() {
		return rs.key.Public(), nil
	}
	return nil, fmt.Errorf("%w: %s %s", signing.ErrUnknownKey, server, keyID)
}

// process handles one input entry. It returns an error only for failures
// worth retrying (storage, log); verdicts go to the waiters.
func (rs *RoomServer) process(ctx context.Context, data []byte) error {
	var in Input
	if err := json.Unmarshal(data, &in); err != nil {
		rs.log.Warn("roomserver: dropping malformed input entry", "err", err)
		return nil
	}
	rules, err := roomversion.Get(in.RoomVersion)
	if err != nil {
		rs.log.Warn("roomserver: dropping input with unknown room version", "err", err)
		return nil
	}
	ev, err := event.Parse(rules, in.Event)
	if err != nil {
		rs.log.Warn("roomserver: dropping malformed event", "err", err)
		return nil
	}
	// A retry of a client transaction whose first event is stored: drop
	// this one and answer with the first.
	if in.Txn != nil {
		first, found, err := rs.TxnEvent(ctx, *in.Txn)
		if err != nil {
			return err
		}
		if found && first != ev.EventID() {
			rs.notify(ev.EventID(), first, nil)
			return nil
		}
	}
	// Already stored: a redelivery after a crash. Publish the output again
	// (the output stream drops duplicates) and report success.
	var existing int64
	err = rs.db.QueryRow(`SELECT snapshot FROM rs_events WHERE event_id = ?`, ev.EventID()).Scan(&existing)
	if err == nil {
		out, err := rs.outputFor(ev, rules)
		if err != nil {
			return err
		}
		if err := rs.publish(ctx, out); err != nil {
			return err
		}
		rs.notify(ev.EventID(), ev.EventID(), nil)
		return nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	out, err := rs.checkAndStore(ctx, rules, ev, in.Txn)
	var rej *RejectedError
	if errors.As(err, &rej) {
		rs.log.Info("roomserver: rejected event", "event_id", ev.EventID(), "err", rej.Err)
		rs.notify(ev.EventID(), "", err)
		return nil
	}
	if err != nil {
		return err
	}
	if err := rs.publish(ctx, out); err != nil {
		return err
	}
	rs.notify(ev.EventID(), ev.EventID(), nil)
	return nil
}

// checkAndStore checks a new event against the state before it and stores
// it. A *RejectedError is a verdict; any other error is worth a retry.
func (rs *RoomServer) checkAndStore(ctx context.Context, rules roomversion.Rules, ev *event.PDU, txn *Txn) (*Output, error) {
	snap, err := rs.snapshotBefore(ev)
	if err != nil {
		return nil, err
	}
	before, err := rs.authStateBefore(rules, ev, snap)
	if err != nil {
		return nil, err
	}
	if verdict := rs.check(ctx, rules, ev, before); verdict != nil {
		return nil, &RejectedError{Err: verdict}
	}
	return rs.store(rules, ev, snap, before, txn)
}

// check runs the signature, hash and authorization checks.
func (rs *RoomServer) check(ctx context.Context, rules roomversion.Rules, ev *event.PDU, before eventauth.StateMap) error {
	if err := signing.VerifyEvent(ctx, rules, ev.JSON(), rs); err != nil {
		return err
	}
	authEvents := make([]*event.PDU, 0, len(ev.AuthEventIDs()))
	for _, id := range ev.AuthEventIDs() {
		a, err := rs.Event(id)
		if err != nil {
			return fmt.Errorf("auth event %s: %w", id, err)
		}
		authEvents = append(authEvents, a)
	}
	opts := eventauth.Options{}
	if !rules.CreateEventInAuthEvents && ev.Type() != "m.room.create" {
		opts.Create = before.Create()
	}
	if _, err := eventauth.CheckAuthEvents(ev, authEvents, opts); err != nil {
		return err
	}
	return eventauth.Check(ev, before)
}

// snapshotBefore returns the snapshot of the state before the event: 0
// (the empty state) for a create event, else the snapshot after its
// previous events. This single-server example builds every event on all of
// the room's forward extremities and serialises sends per room, so the
// previous events always agree; an event whose previous events have
// different snapshots is rejected here instead of being resolved.
func (rs *RoomServer) snapshotBefore(ev *event.PDU) (int64, error) {
	if len(ev.PrevEventIDs()) == 0 {
		if ev.Type() != "m.room.create" {
			return 0, &RejectedError{Err: errors.New("event has no previous events")}
		}
		return 0, nil
	}
	var first int64
	for i, prev := range ev.PrevEventIDs() {
		var snap int64
		var roomID string
		err := rs.db.QueryRow(`SELECT snapshot, room_id FROM rs_events WHERE event_id = ?`, prev).Scan(&snap, &roomID)
		if errors.Is(err, sql.ErrNoRows) {
			return 0, &RejectedError{Err: fmt.Errorf("previous event %s is unknown", prev)}
		}
		if err != nil {
			return 0, err
		}
		if roomID != ev.RoomID() {
			return 0, &RejectedError{Err: fmt.Errorf("previous event %s is in another room", prev)}
		}
		if i == 0 {
			first = snap
		} else if snap != first {
			return 0, &RejectedError{Err: errors.New("previous events disagree on the room state; state resolution across forks is not wired into this example")}
		}
	}
	return first, nil
}

// stateKeysFor lists the state entries the room server reads for an
// event: those its authorization needs, the create event (which room
// version 12 events do not cite) and, for a state event, the entry it
// replaces.
func stateKeysFor(rules roomversion.Rules, evType, sender string, stateKey *string, content []byte) []eventauth.StateKey {
	sk := ""
	if stateKey != nil {
		sk = *stateKey
	}
	keys := eventauth.AuthEventsNeeded(rules, evType, sk, sender, content)
	keys = appendKey(keys, eventauth.StateKey{Type: "m.room.create"})
	if stateKey != nil {
		keys = appendKey(keys, eventauth.StateKey{Type: evType, StateKey: sk})
	}
	return keys
}

func appendKey(keys []eventauth.StateKey, k eventauth.StateKey) []eventauth.StateKey {
	for _, have := range keys {
		if have == k {
			return keys
		}
	}
	return append(keys, k)
}

// authStateBefore returns the part of the state before ev (snapshot snap)
// that checking and storing it reads (stateKeysFor). When snap is the
// room's current state, as for every event built on the latest one, the
// entries come from rs_state by key; otherwise from the snapshot chain.
// Either way the work does not grow with the room's state.
func (rs *RoomServer) authStateBefore(rules roomversion.Rules, ev *event.PDU, snap int64) (eventauth.StateMap, error) {
	state := eventauth.StateMap{}
	if snap == 0 {
		return state, nil
	}
	var sk *string
	if s, ok := ev.StateKey(); ok {
		sk = &s
	}
	keys := stateKeysFor(rules, ev.Type(), ev.Sender(), sk, ev.Content())
	var current int64
	if err := rs.db.QueryRow(`SELECT snapshot FROM rs_rooms WHERE room_id = ?`, ev.RoomID()).Scan(&current); err != nil {
		return nil, fmt.Errorf("roomserver: room of %s: %w", ev.EventID(), err)
	}
	var ids map[eventauth.StateKey]string
	var err error
	if current == snap {
		ids, err = rs.currentIDs(ev.RoomID(), keys)
	} else {
		ids, err = lookupSnapshot(rs.db, ev.RoomID(), snap, keys)
	}
	if err != nil {
		return nil, err
	}
	for k, id := range ids {
		p, err := rs.Event(id)
		if err != nil {
			return nil, err
		}
		state[k] = p
	}
	return state, nil
}

// currentIDs reads keys from the room's current state table.
func (rs *RoomServer) currentIDs(roomID string, keys []eventauth.StateKey) (map[eventauth.StateKey]string, error) {
	out := make(map[eventauth.StateKey]string, len(keys))
	for _, k := range keys {
		var id string
		err := rs.db.QueryRow(`SELECT event_id FROM rs_state WHERE room_id = ? AND type = ? AND state_key = ?`, roomID, k.Type, k.StateKey).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[k] = id
	}
	return out, nil
}

// store writes, in one transaction, the event with its snapshot (a new
// delta for a state event, the previous events' snapshot otherwise), the
// room's forward extremities and, when the event extends the current
// state, the current state table; it returns the output entry. before must
// hold the entry a state event replaces (authStateBefore reads it).
func (rs *RoomServer) store(rules roomversion.Rules, ev *event.PDU, snapBefore int64, before eventauth.StateMap, txn *Txn) (*Output, error) {
	sk, isState := ev.StateKey()
	var replaced *event.PDU
	if isState {
		replaced = before[eventauth.StateKey{Type: ev.Type(), StateKey: sk}]
	}
	tx, err := rs.db.Begin()
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	snapAfter := snapBefore
	if isState {
		added := 1
		if replaced != nil {
			added = 0
		}
		snapAfter, err = writeSnapshot(tx, ev.RoomID(), snapBefore, []stateEntry{{ev.Type(), sk, ev.EventID()}}, added)
		if err != nil {
			return nil, err
		}
	}
	if _, err := tx.Exec(`INSERT INTO rs_events (event_id, room_id, json, snapshot) VALUES (?, ?, ?, ?)`,
		ev.EventID(), ev.RoomID(), string(ev.JSON()), snapAfter); err != nil {
		return nil, err
	}
	if txn != nil {
		if _, err := tx.Exec(`INSERT INTO rs_txns (user_id, device_id, txn_id, event_id) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			txn.UserID, txn.DeviceID, txn.ID, ev.EventID()); err != nil {
			return nil, err
		}
	}
	// Forward extremities: the event replaces its previous events.
	var extJSON string
	var depth, current int64
	err = tx.QueryRow(`SELECT extremities, depth, snapshot FROM rs_rooms WHERE room_id = ?`, ev.RoomID()).Scan(&extJSON, &depth, &current)
	var ext []string
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return nil, err
	default:
		_ = json.Unmarshal([]byte(extJSON), &ext)
	}
	next := []string{ev.EventID()}
	for _, x := range ext {
		if !contains(ev.PrevEventIDs(), x) {
			next = append(next, x)
		}
	}
	nextJSON, _ := json.Marshal(next)
	// The event moves the current state only if it was built on it; an
	// event on an older state (a fork) leaves the current state alone.
	extends := current == snapBefore
	if extends {
		current = snapAfter
	}
	if _, err := tx.Exec(`INSERT INTO rs_rooms (room_id, version, extremities, depth, snapshot) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT(room_id) DO UPDATE SET extremities = excluded.extremities, snapshot = excluded.snapshot,
		depth = CASE WHEN excluded.depth > rs_rooms.depth THEN excluded.depth ELSE rs_rooms.depth END`,
		ev.RoomID(), rules.ID, string(nextJSON), ev.Depth(), current); err != nil {
		return nil, err
	}
	if isState && extends {
		if _, err := tx.Exec(`INSERT INTO rs_state (room_id, type, state_key, event_id) VALUES (?, ?, ?, ?)
			ON CONFLICT(room_id, type, state_key) DO UPDATE SET event_id = excluded.event_id`,
			ev.RoomID(), ev.Type(), sk, ev.EventID()); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	rs.remember(ev)
	out := &Output{RoomID: ev.RoomID(), RoomVersion: rules.ID, EventID: ev.EventID(), Event: ev.JSON()}
	if isState && extends {
		out.AddsState = []string{ev.EventID()}
		if replaced != nil {
			out.RemovesState = []string{replaced.EventID()}
		}
	}
	return out, nil
}

// outputFor rebuilds the output entry of a stored event: for a state event,
// the entry it replaced comes from the snapshot before it, by key.
func (rs *RoomServer) outputFor(ev *event.PDU, rules roomversion.Rules) (*Output, error) {
	out := &Output{RoomID: ev.RoomID(), RoomVersion: rules.ID, EventID: ev.EventID(), Event: ev.JSON()}
	if sk, ok := ev.StateKey(); ok {
		out.AddsState = []string{ev.EventID()}
		snap, err := rs.snapshotBefore(ev)
		if err != nil {
			return nil, err
		}
		if snap != 0 {
			k := eventauth.StateKey{Type: ev.Type(), StateKey: sk}
			ids, err := lookupSnapshot(rs.db, ev.RoomID(), snap, []eventauth.StateKey{k})
			if err != nil {
				return nil, err
			}
			if id, ok := ids[k]; ok {
				out.RemovesState = []string{id}
			}
		}
	}
	return out, nil
}

func (rs *RoomServer) publish(ctx context.Context, out *Output) error {
	data, err := json.Marshal(out)
	if err != nil {
		return err
	}
	_, err = rs.js.Publish(logs.OutputSubject, data, nats.MsgId(out.EventID), nats.Context(ctx))
	return err
}

func (rs *RoomServer) remember(ev *event.PDU) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if len(rs.cache) > 100000 {
		clear(rs.cache)
	}
	rs.cache[ev.EventID()] = ev
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
