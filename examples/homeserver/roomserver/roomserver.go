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
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/eventauth"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/db"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/logs"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
	"github.com/gomatrixlib/gomatrixlib/signing"
	"github.com/gomatrixlib/gomatrixlib/stateres"
	"github.com/nats-io/nats.go"
)

// Input is one entry of the input log.
type Input struct {
	RoomVersion string          `json:"room_version"`
	Event       json.RawMessage `json:"event"`
	// Origin is the server that sent the event over federation; empty for
	// events built here. Events with an origin are also checked against
	// the room's current state (soft failure), and their missing previous
	// events are fetched from the origin.
	Origin string `json:"origin,omitempty"`
	// Send asks the federation sender to pass the event on to the room's
	// other servers although its sender is not ours: a join, leave or
	// knock another server handed us through send_join and friends.
	Send bool `json:"send,omitempty"`
	// Outliers are events stored without state before Event is processed:
	// the auth chain and state a send_join response returned. The writer
	// checked them (format, signatures, hashes, auth).
	Outliers []json.RawMessage `json:"outliers,omitempty"`
	// StateBefore, when set, is the state before Event (event IDs, all
	// stored or among Outliers) instead of the state after its previous
	// events: the room state a resident server gave us with our join.
	StateBefore []string `json:"state_before,omitempty"`
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
	// StateEvents are the events of AddsState other than Event (the
	// room's state when we joined it, or what state resolution chose).
	StateEvents []StateEvent `json:"state_events,omitempty"`
	// Send is true when the federation sender must send the event to
	// Servers: it was sent by one of our users, or handed to us by
	// another server to relay (Input.Send).
	Send bool `json:"send,omitempty"`
	// InviteRoomState is the stripped room state another server sent with
	// an invite for one of our users to a room we are not in.
	InviteRoomState []json.RawMessage `json:"invite_room_state,omitempty"`
}

// StateEvent is a state event carried by an output entry.
type StateEvent struct {
	EventID string          `json:"event_id"`
	Event   json.RawMessage `json:"event"`
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

	// keys verifies other servers' signatures; remote fetches missing
	// events. Both nil for a server that does not federate.
	keys   signing.KeyLookup
	remote Remote

	mu       sync.Mutex
	waiters  map[string][]chan verdict
	cache    map[string]*event.PDU
	verdicts map[string]error // recent rejections, for resubmissions the log deduplicated
	// The room cache (roomcache.go).
	rooms    map[string]*roomEntry
	genSeq   uint64
	versions map[string]roomversion.Rules

	consumer *logs.Consumer
}

// Remote fetches events from other servers (federation.Client implements
// it).
type Remote interface {
	GetMissingEvents(ctx context.Context, destination, roomID string, earliest, latest []string, limit int) (json.RawMessage, error)
	StateIDs(ctx context.Context, destination, roomID, eventID string) (json.RawMessage, error)
	GetEvent(ctx context.Context, destination, eventID string) (json.RawMessage, error)
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

// outlierSnap is the snapshot of an event stored without state (an
// outlier: part of an auth chain or of the state another server gave us).
const outlierSnap int64 = -1

// New prepares the room server's tables. Call Start to consume the log.
func New(db *db.DB, js nats.JetStreamContext, serverName string, key *signing.Key, log *slog.Logger) (*RoomServer, error) {
	if _, err := db.Exec(schema); err != nil {
		return nil, fmt.Errorf("roomserver: schema: %w", err)
	}
	if err := migrate(db, log); err != nil {
		return nil, fmt.Errorf("roomserver: migrating to state snapshots: %w", err)
	}
	return &RoomServer{db: db, js: js, serverName: serverName, key: key, log: log,
		waiters: map[string][]chan verdict{}, cache: map[string]*event.PDU{}, verdicts: map[string]error{},
		rooms: map[string]*roomEntry{}, versions: map[string]roomversion.Rules{}}, nil
}

// SetFederation lets the room server verify other servers' signatures
// with keys and fetch missing events with remote. Call before Start.
func (rs *RoomServer) SetFederation(keys signing.KeyLookup, remote Remote) {
	rs.keys, rs.remote = keys, remote
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
	return rs.submit(ctx, Input{RoomVersion: rules.ID, Event: ev.JSON(), Txn: txn})
}

// SubmitInput appends an input entry and waits for the verdict on its
// event, as Submit. An event already stored with its state is accepted at
// once.
func (rs *RoomServer) SubmitInput(ctx context.Context, in Input) error {
	_, err := rs.submit(ctx, in)
	return err
}

func (rs *RoomServer) submit(ctx context.Context, in Input) (string, error) {
	rules, err := roomversion.Get(in.RoomVersion)
	if err != nil {
		return "", err
	}
	ev, err := event.Parse(rules, in.Event)
	if err != nil {
		return "", &RejectedError{Err: err}
	}
	if rs.HasState(ev.EventID()) {
		return ev.EventID(), nil
	}
	ch := make(chan verdict, 1)
	rs.mu.Lock()
	rs.waiters[ev.EventID()] = append(rs.waiters[ev.EventID()], ch)
	rs.mu.Unlock()
	data, err := json.Marshal(in)
	if err != nil {
		rs.dropWaiter(ev.EventID(), ch)
		return "", err
	}
	pctx, cancel := context.WithTimeout(ctx, publishTimeout)
	ack, err := rs.js.Publish(logs.InputSubject, data, nats.MsgId(ev.EventID()), nats.Context(pctx))
	cancel()
	if err != nil {
		rs.dropWaiter(ev.EventID(), ch)
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		rs.log.Warn("roomserver: the input log is unreachable; refusing the event", "event_id", ev.EventID(), "err", err)
		return "", fmt.Errorf("%w: %w", ErrLogUnavailable, err)
	}
	if ack.Duplicate {
		// The log already had this event: it may have been decided
		// while we registered.
		if rs.HasState(ev.EventID()) {
			rs.dropWaiter(ev.EventID(), ch)
			return ev.EventID(), nil
		}
		rs.mu.Lock()
		v, ok := rs.verdicts[ev.EventID()]
		rs.mu.Unlock()
		if ok {
			rs.dropWaiter(ev.EventID(), ch)
			return "", v
		}
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
	if err != nil {
		if len(rs.verdicts) > 10000 {
			clear(rs.verdicts)
		}
		rs.verdicts[eventID] = err
	}
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

// VerifyKey implements signing.KeyLookup: our own key, other servers'
// keys through the key ring given to SetFederation.
func (rs *RoomServer) VerifyKey(ctx context.Context, server, keyID string, validAt time.Time) (ed25519.PublicKey, error) {
	if server == rs.serverName && keyID == rs.key.KeyID() {
		return rs.key.Public(), nil
	}
	if rs.keys != nil && server != rs.serverName {
		return rs.keys.VerifyKey(ctx, server, keyID, validAt)
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
	for _, raw := range in.Outliers {
		o, err := event.Parse(rules, raw)
		if err != nil {
			rs.log.Warn("roomserver: dropping malformed outlier", "err", err)
			continue
		}
		if err := rs.storeOutlier(rules, o); err != nil {
			return err
		}
	}
	// Already stored with its state: a redelivery after a crash. Publish
	// the output again (the output stream drops duplicates) and report
	// success.
	if rs.HasState(ev.EventID()) {
		out, err := rs.outputFor(ev, rules, in)
		if err != nil {
			return err
		}
		if err := rs.publish(ctx, out); err != nil {
			return err
		}
		rs.notify(ev.EventID(), ev.EventID(), nil)
		return nil
	}
	remote := in.Origin != "" && in.StateBefore == nil
	if remote {
		if err := rs.fetchMissing(ctx, rules, ev, in.Origin); err != nil {
			return err
		}
	}
	out, err := rs.checkAndStore(ctx, rules, ev, in.StateBefore, remote, in.Txn)
	var rej *RejectedError
	if errors.As(err, &rej) {
		rs.log.Info("roomserver: rejected event", "event_id", ev.EventID(), "origin", in.Origin, "err", rej.Err)
		rs.notify(ev.EventID(), "", err)
		return nil
	}
	if err != nil {
		return err
	}
	if out != nil {
		out.Send = in.Send || isLocal(ev.Sender(), rs.serverName)
		if err := rs.publish(ctx, out); err != nil {
			return err
		}
	}
	rs.notify(ev.EventID(), ev.EventID(), nil)
	return nil
}

// checkAndStore checks a new event against the state before it and stores
// it. stateIDs, when set, is the state before it (a join through another
// server); softFail also checks it against the current state (events from
// other servers). A *RejectedError is a verdict; any other error is worth
// a retry. The output is nil for a soft-failed event. txn, when set, is
// recorded with the event.
func (rs *RoomServer) checkAndStore(ctx context.Context, rules roomversion.Rules, ev *event.PDU, stateIDs []string, softFail bool, txn *Txn) (*Output, error) {
	snap, err := rs.snapshotBefore(ctx, rules, ev, stateIDs)
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
	softFailed := false
	if softFail {
		// Soft failure: an event from another server that the room's
		// current state does not allow is stored but neither shown to
		// clients nor built upon.
		var sk *string
		if s, ok := ev.StateKey(); ok {
			sk = &s
		}
		current, err := rs.CurrentStateFor(ev.RoomID(), stateKeysFor(rules, ev.Type(), ev.Sender(), sk, ev.Content()))
		if err != nil {
			return nil, err
		}
		if err := eventauth.Check(ev, current); err != nil {
			rs.log.Info("roomserver: soft-failed event", "event_id", ev.EventID(), "err", err)
			softFailed = true
		}
	}
	return rs.store(ctx, rules, ev, snap, before, softFailed, txn)
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

// snapshotBefore returns the snapshot of the state before the event: a new
// full snapshot of stateIDs when set; 0 (the empty state) for a create
// event; the snapshot after its previous events when they agree; else a
// new snapshot of their states' resolution with stateres.Resolve (stored
// as a delta against the first previous event's).
func (rs *RoomServer) snapshotBefore(ctx context.Context, rules roomversion.Rules, ev *event.PDU, stateIDs []string) (int64, error) {
	if stateIDs != nil {
		entries := make([]stateEntry, 0, len(stateIDs))
		for _, id := range stateIDs {
			p, err := rs.Event(id)
			if err != nil {
				return 0, &RejectedError{Err: fmt.Errorf("state event %s: %w", id, err)}
			}
			sk, ok := p.StateKey()
			if !ok || p.RoomID() != ev.RoomID() {
				return 0, &RejectedError{Err: fmt.Errorf("state event %s is not a state event of the room", id)}
			}
			entries = append(entries, stateEntry{p.Type(), sk, id})
		}
		return rs.writeState(ev.RoomID(), 0, entries)
	}
	if len(ev.PrevEventIDs()) == 0 {
		if ev.Type() != "m.room.create" {
			return 0, &RejectedError{Err: errors.New("event has no previous events")}
		}
		return 0, nil
	}
	snaps := make([]int64, 0, len(ev.PrevEventIDs()))
	agree := true
	for _, prev := range ev.PrevEventIDs() {
		var snap int64
		var roomID string
		err := rs.db.QueryRow(`SELECT snapshot, room_id FROM rs_events WHERE event_id = ?`, prev).Scan(&snap, &roomID)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && snap == outlierSnap) {
			return 0, &RejectedError{Err: fmt.Errorf("previous event %s is unknown", prev)}
		}
		if err != nil {
			return 0, err
		}
		if roomID != ev.RoomID() {
			return 0, &RejectedError{Err: fmt.Errorf("previous event %s is in another room", prev)}
		}
		agree = agree && (len(snaps) == 0 || snap == snaps[0])
		snaps = append(snaps, snap)
	}
	if agree {
		return snaps[0], nil
	}
	sets := make([]map[eventauth.StateKey]string, 0, len(snaps))
	for _, snap := range snaps {
		m, err := rs.snapshotMap(ev.RoomID(), snap)
		if err != nil {
			return 0, err
		}
		sets = append(sets, m)
	}
	resolved, err := rs.resolve(ctx, rules, sets, nil)
	if err != nil {
		return 0, err
	}
	return rs.writeState(ev.RoomID(), snaps[0], diffEntries(sets[0], resolved))
}

// snapshotMap loads a snapshot as a map.
func (rs *RoomServer) snapshotMap(roomID string, snap int64) (map[eventauth.StateKey]string, error) {
	entries, err := loadSnapshot(rs.db, roomID, snap)
	if err != nil {
		return nil, err
	}
	out := make(map[eventauth.StateKey]string, len(entries))
	for _, e := range entries {
		out[eventauth.StateKey{Type: e.Type, StateKey: e.StateKey}] = e.EventID
	}
	return out, nil
}

// diffEntries returns the entries of to that differ from from, sorted.
// (Resolved states keep every key of their inputs, so nothing is removed.)
func diffEntries(from, to map[eventauth.StateKey]string) []stateEntry {
	var out []stateEntry
	for k, id := range to {
		if from[k] != id {
			out = append(out, stateEntry{k.Type, k.StateKey, id})
		}
	}
	sortEntries(out)
	return out
}

// writeState stores a snapshot of parent plus changes in its own
// transaction; with no changes it is parent itself.
func (rs *RoomServer) writeState(roomID string, parent int64, changes []stateEntry) (int64, error) {
	if len(changes) == 0 && parent != 0 {
		return parent, nil
	}
	sortEntries(changes)
	tx, err := rs.db.Begin()
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	added := 0
	if parent == 0 {
		added = len(changes)
	} else {
		ids, err := lookupSnapshot(tx, roomID, parent, keysOf(changes))
		if err != nil {
			return 0, err
		}
		for _, c := range changes {
			if _, ok := ids[eventauth.StateKey{Type: c.Type, StateKey: c.StateKey}]; !ok {
				added++
			}
		}
	}
	snap, err := writeSnapshot(tx, roomID, parent, changes, added)
	if err != nil {
		return 0, err
	}
	return snap, tx.Commit()
}

func keysOf(es []stateEntry) []eventauth.StateKey {
	out := make([]eventauth.StateKey, len(es))
	for i, e := range es {
		out[i] = eventauth.StateKey{Type: e.Type, StateKey: e.StateKey}
	}
	return out
}

// stateBefore returns the whole state before an event (for federation
// reads), as snapshotBefore finds it.
func (rs *RoomServer) stateBefore(ctx context.Context, rules roomversion.Rules, ev *event.PDU, stateIDs []string) (eventauth.StateMap, error) {
	snap, err := rs.snapshotBefore(ctx, rules, ev, stateIDs)
	if err != nil {
		return nil, err
	}
	if snap == 0 {
		return eventauth.StateMap{}, nil
	}
	m, err := rs.snapshotMap(ev.RoomID(), snap)
	if err != nil {
		return nil, err
	}
	return rs.loadState(m)
}

// resolve returns the one state when all sets agree, else the sets'
// resolution with stateres.Resolve.
func (rs *RoomServer) resolve(ctx context.Context, rules roomversion.Rules, sets []map[eventauth.StateKey]string, pending *event.PDU) (map[eventauth.StateKey]string, error) {
	if len(sets) == 1 || allEqual(sets) {
		return sets[0], nil
	}
	res, err := stateres.Resolve(ctx, rules, sets, provider{rs, pending})
	if err != nil {
		return nil, fmt.Errorf("roomserver: state resolution: %w", err)
	}
	return res, nil
}

func allEqual(sets []map[eventauth.StateKey]string) bool {
	for _, s := range sets[1:] {
		if !maps.Equal(s, sets[0]) {
			return false
		}
	}
	return true
}

// provider gives stateres the room server's events and the event being
// stored (pending).
type provider struct {
	rs      *RoomServer
	pending *event.PDU
}

func (p provider) Events(_ context.Context, ids []string) ([]*event.PDU, error) {
	out := make([]*event.PDU, len(ids))
	for i, id := range ids {
		ev, err := p.one(id)
		if err != nil && !errors.Is(err, ErrUnknownEvent) {
			return nil, err
		}
		out[i] = ev
	}
	return out, nil
}

func (p provider) one(id string) (*event.PDU, error) {
	if p.pending != nil && id == p.pending.EventID() {
		return p.pending, nil
	}
	return p.rs.Event(id)
}

func (rs *RoomServer) loadState(ids map[eventauth.StateKey]string) (eventauth.StateMap, error) {
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

// storeOutlier stores an event without state, unless it is stored.
func (rs *RoomServer) storeOutlier(rules roomversion.Rules, ev *event.PDU) error {
	if ev.Type() == "m.room.create" {
		if _, err := rs.db.Exec(`INSERT INTO rs_rooms (room_id, version, extremities, depth) VALUES (?, ?, ?, ?) ON CONFLICT(room_id) DO NOTHING`,
			ev.RoomID(), rules.ID, "[]", 0); err != nil {
			return err
		}
		rs.forgetRoom(ev.RoomID())
	}
	_, err := rs.db.Exec(`INSERT INTO rs_events (event_id, room_id, json, snapshot) VALUES (?, ?, ?, ?) ON CONFLICT(event_id) DO NOTHING`,
		ev.EventID(), ev.RoomID(), string(ev.JSON()), outlierSnap)
	if err == nil {
		rs.remember(ev)
	}
	return err
}

// store writes, in one transaction, the event with its snapshot (a new
// delta for a state event, the previous events' snapshot otherwise), the
// room's forward extremities and current state, and returns the output
// entry (nil for a soft-failed event, which changes neither).
//
// The common case, an event built on the current state, touches only the
// event's own state entry. Otherwise (a join through another server, a
// fork) the new current state is the state after the event, or with
// several forward extremities their resolution (stateres.Resolve), and the
// current state table and the output carry the whole difference.
func (rs *RoomServer) store(ctx context.Context, rules roomversion.Rules, ev *event.PDU, snapBefore int64, before eventauth.StateMap, softFailed bool, txn *Txn) (*Output, error) {
	sk, isState := ev.StateKey()
	var replaced *event.PDU
	if isState {
		replaced = before[eventauth.StateKey{Type: ev.Type(), StateKey: sk}]
	}
	info, err := rs.roomInfo(ev.RoomID())
	known := err == nil
	if err != nil && !errors.Is(err, ErrUnknownRoom) {
		return nil, err
	}
	ext, current := info.extremities, info.snapshot
	next := ext
	if !softFailed {
		next = []string{ev.EventID()}
		for _, x := range ext {
			if !slices.Contains(ev.PrevEventIDs(), x) {
				next = append(next, x)
			}
		}
	}
	linear := !softFailed && len(next) == 1 && snapBefore == current
	rs.log.Debug("roomserver: storing", "event_id", ev.EventID(), "type", ev.Type(), "linear", linear, "next", next, "snap_before", snapBefore, "current", current, "server", rs.serverName)

	// Off the linear path: the new current state as a map, computed before
	// the transaction (resolution reads events).
	var newCurrent, oldCurrent map[eventauth.StateKey]string
	if !softFailed && !linear {
		after, err := rs.snapshotMap(ev.RoomID(), snapBefore)
		if err != nil {
			return nil, err
		}
		if isState {
			after[eventauth.StateKey{Type: ev.Type(), StateKey: sk}] = ev.EventID()
		}
		newCurrent = after
		if len(next) > 1 {
			sets := []map[eventauth.StateKey]string{after}
			for _, x := range next[1:] {
				sa, err := rs.StateAfter(x)
				if err != nil {
					return nil, err
				}
				sets = append(sets, sa)
			}
			if newCurrent, err = rs.resolve(ctx, rules, sets, ev); err != nil {
				return nil, err
			}
		}
		if oldCurrent, err = rs.currentStateIDs(ev.RoomID()); err != nil {
			return nil, err
		}
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
	// An outlier gets its state; an event already stored with state is
	// an error (the transaction then leaves nothing).
	res, err := tx.Exec(`INSERT INTO rs_events (event_id, room_id, json, snapshot) VALUES (?, ?, ?, ?)
		ON CONFLICT(event_id) DO UPDATE SET snapshot = excluded.snapshot WHERE rs_events.snapshot = -1`,
		ev.EventID(), ev.RoomID(), string(ev.JSON()), snapAfter)
	if err != nil {
		return nil, err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return nil, fmt.Errorf("roomserver: storing %s: already stored (%v)", ev.EventID(), err)
	}
	if txn != nil {
		if _, err := tx.Exec(`INSERT INTO rs_txns (user_id, device_id, txn_id, event_id) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			txn.UserID, txn.DeviceID, txn.ID, ev.EventID()); err != nil {
			return nil, err
		}
	}
	newSnap := current
	switch {
	case linear:
		newSnap = snapAfter
	case !softFailed && len(next) == 1:
		newSnap = snapAfter
	case !softFailed:
		// The resolved current state, as a delta against the state after
		// the event.
		afterMap, err := rs.snapshotMapTx(tx, ev.RoomID(), snapAfter)
		if err != nil {
			return nil, err
		}
		changes := diffEntries(afterMap, newCurrent)
		if len(changes) == 0 {
			newSnap = snapAfter
		} else {
			added := 0
			for _, c := range changes {
				if _, ok := afterMap[eventauth.StateKey{Type: c.Type, StateKey: c.StateKey}]; !ok {
					added++
				}
			}
			if newSnap, err = writeSnapshot(tx, ev.RoomID(), snapAfter, changes, added); err != nil {
				return nil, err
			}
		}
	}
	nextJSON, _ := json.Marshal(next)
	if _, err := tx.Exec(`INSERT INTO rs_rooms (room_id, version, extremities, depth, snapshot) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT(room_id) DO UPDATE SET extremities = excluded.extremities, snapshot = excluded.snapshot,
		depth = CASE WHEN excluded.depth > rs_rooms.depth THEN excluded.depth ELSE rs_rooms.depth END`,
		ev.RoomID(), rules.ID, string(nextJSON), ev.Depth(), newSnap); err != nil {
		return nil, err
	}
	out := &Output{RoomID: ev.RoomID(), RoomVersion: rules.ID, EventID: ev.EventID(), Event: ev.JSON()}
	switch {
	case softFailed:
	case linear:
		if isState {
			if _, err := tx.Exec(`INSERT INTO rs_state (room_id, type, state_key, event_id) VALUES (?, ?, ?, ?)
				ON CONFLICT(room_id, type, state_key) DO UPDATE SET event_id = excluded.event_id`,
				ev.RoomID(), ev.Type(), sk, ev.EventID()); err != nil {
				return nil, err
			}
			out.AddsState = []string{ev.EventID()}
			if replaced != nil {
				out.RemovesState = []string{replaced.EventID()}
			}
		}
	default:
		for k, id := range newCurrent {
			if oldCurrent[k] == id {
				continue
			}
			if _, err := tx.Exec(`INSERT INTO rs_state (room_id, type, state_key, event_id) VALUES (?, ?, ?, ?)
				ON CONFLICT(room_id, type, state_key) DO UPDATE SET event_id = excluded.event_id`,
				ev.RoomID(), k.Type, k.StateKey, id); err != nil {
				return nil, err
			}
			out.AddsState = append(out.AddsState, id)
			if old, ok := oldCurrent[k]; ok {
				out.RemovesState = append(out.RemovesState, old)
			}
			if id != ev.EventID() {
				p, err := provider{rs, ev}.one(id)
				if err != nil {
					return nil, err
				}
				out.StateEvents = append(out.StateEvents, StateEvent{EventID: id, Event: p.JSON()})
			}
		}
		for k, id := range oldCurrent {
			if _, ok := newCurrent[k]; !ok {
				if _, err := tx.Exec(`DELETE FROM rs_state WHERE room_id = ? AND type = ? AND state_key = ?`, ev.RoomID(), k.Type, k.StateKey); err != nil {
					return nil, err
				}
				out.RemovesState = append(out.RemovesState, id)
			}
		}
		sort.Strings(out.AddsState)
		sort.Strings(out.RemovesState)
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	row := roomRow{version: rules.ID, extremities: next, depth: ev.Depth(), snapshot: newSnap}
	if known {
		row.version, row.depth = info.version, max(info.depth, ev.Depth())
	}
	var key *eventauth.StateKey
	if linear && isState {
		key = &eventauth.StateKey{Type: ev.Type(), StateKey: sk}
	}
	rs.stored(ev.RoomID(), row, key, ev.EventID(), !softFailed && !linear)
	rs.remember(ev)
	if softFailed {
		return nil, nil
	}
	return out, nil
}

// snapshotMapTx is snapshotMap inside a transaction.
func (rs *RoomServer) snapshotMapTx(tx querier, roomID string, snap int64) (map[eventauth.StateKey]string, error) {
	out := map[eventauth.StateKey]string{}
	if snap == 0 {
		return out, nil
	}
	entries, err := loadSnapshot(tx, roomID, snap)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		out[eventauth.StateKey{Type: e.Type, StateKey: e.StateKey}] = e.EventID
	}
	return out, nil
}

// currentStateIDs returns the room's current state as event IDs (empty
// for an unknown room).
func (rs *RoomServer) currentStateIDs(roomID string) (map[eventauth.StateKey]string, error) {
	rows, err := rs.db.Query(`SELECT type, state_key, event_id FROM rs_state WHERE room_id = ?`, roomID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[eventauth.StateKey]string{}
	for rows.Next() {
		var k eventauth.StateKey
		var id string
		if err := rows.Scan(&k.Type, &k.StateKey, &id); err != nil {
			return nil, err
		}
		out[k] = id
	}
	return out, rows.Err()
}

// outputFor rebuilds the output entry of a stored event after a crash
// between storing and publishing: for a state event, the entry it
// replaced comes from the snapshot before it, by key. (A resolution's
// other changes are not rebuilt.)
func (rs *RoomServer) outputFor(ev *event.PDU, rules roomversion.Rules, in Input) (*Output, error) {
	out := &Output{RoomID: ev.RoomID(), RoomVersion: rules.ID, EventID: ev.EventID(), Event: ev.JSON(),
		Send: in.Send || isLocal(ev.Sender(), rs.serverName)}
	if sk, ok := ev.StateKey(); ok {
		out.AddsState = []string{ev.EventID()}
		if in.StateBefore != nil {
			return out, nil
		}
		snap, err := rs.snapshotBefore(context.Background(), rules, ev, nil)
		if err != nil {
			var rej *RejectedError
			if errors.As(err, &rej) {
				return out, nil
			}
			return nil, err
		}
		if snap != 0 {
			k := eventauth.StateKey{Type: ev.Type(), StateKey: sk}
			ids, err := lookupSnapshot(rs.db, ev.RoomID(), snap, []eventauth.StateKey{k})
			if err != nil {
				return nil, err
			}
			if id, ok := ids[k]; ok && id != ev.EventID() {
				out.RemovesState = []string{id}
			}
		}
	}
	return out, nil
}

// isLocal reports whether the user ID belongs to server.
func isLocal(userID, server string) bool {
	return serverOf(userID) == server
}

// serverOf returns the server name of a user ID ("" if malformed).
func serverOf(userID string) string {
	_, s, ok := strings.Cut(userID, ":")
	if !ok {
		return ""
	}
	return s
}

// joinedServers returns the servers with a joined member in state, sorted.
func joinedServers(state eventauth.StateMap) []string {
	set := map[string]bool{}
	for k, p := range state {
		if k.Type == "m.room.member" && p.Membership() == "join" {
			if s := serverOf(k.StateKey); s != "" {
				set[s] = true
			}
		}
	}
	out := make([]string, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
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
	info, err := rs.roomInfo(ev.RoomID())
	if err != nil {
		return nil, fmt.Errorf("roomserver: room of %s: %w", ev.EventID(), err)
	}
	var ids map[eventauth.StateKey]string
	if info.snapshot == snap {
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
