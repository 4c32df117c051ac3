// Package roomserver owns room state. It consumes the input log (events
// that writers want in rooms), checks each event (format, hashes and
// signatures, authorization against its auth events and against the state
// before it), stores accepted events with the state after each one, and
// appends an entry to the output log carrying the event and the state
// delta. Its query API answers what writers and readers need to know about
// rooms.
//
// Events of one room are processed in log order by a single durable
// consumer, so a restart resumes where processing stopped; reprocessing an
// event already stored republishes its output entry, which the output
// stream deduplicates by event ID.
package roomserver

import (
	"context"
	"crypto/ed25519"
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
	// Servers are the servers with a joined member in the state before
	// the event, ours included.
	Servers []string `json:"servers,omitempty"`
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
	waiters  map[string][]chan error
	cache    map[string]*event.PDU
	verdicts map[string]error // recent rejections, for resubmissions the log deduplicated

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
	extremities TEXT NOT NULL, depth BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS rs_events (
	nid INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT UNIQUE NOT NULL,
	room_id TEXT NOT NULL, json TEXT NOT NULL, state_after TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS rs_events_room ON rs_events(room_id, nid);
CREATE TABLE IF NOT EXISTS rs_state (
	room_id TEXT NOT NULL, type TEXT NOT NULL, state_key TEXT NOT NULL,
	event_id TEXT NOT NULL, PRIMARY KEY (room_id, type, state_key));
`

// outlierState is the state_after of an event stored without state (an
// outlier: part of an auth chain or of the state another server gave us).
const outlierState = ""

// New prepares the room server's tables. Call Start to consume the log.
func New(db *db.DB, js nats.JetStreamContext, serverName string, key *signing.Key, log *slog.Logger) (*RoomServer, error) {
	if _, err := db.Exec(schema); err != nil {
		return nil, fmt.Errorf("roomserver: schema: %w", err)
	}
	return &RoomServer{db: db, js: js, serverName: serverName, key: key, log: log,
		waiters: map[string][]chan error{}, cache: map[string]*event.PDU{}, verdicts: map[string]error{}}, nil
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

// Submit appends the event to the input log and waits for the room
// server's verdict: nil when accepted, a *RejectedError when a check
// failed.
func (rs *RoomServer) Submit(ctx context.Context, rules roomversion.Rules, ev *event.PDU) error {
	return rs.SubmitInput(ctx, Input{RoomVersion: rules.ID, Event: ev.JSON()})
}

// SubmitInput appends an input entry and waits for the verdict on its
// event, as Submit. An event already stored with its state is accepted at
// once.
func (rs *RoomServer) SubmitInput(ctx context.Context, in Input) error {
	rules, err := roomversion.Get(in.RoomVersion)
	if err != nil {
		return err
	}
	ev, err := event.Parse(rules, in.Event)
	if err != nil {
		return &RejectedError{Err: err}
	}
	if rs.HasState(ev.EventID()) {
		return nil
	}
	ch := make(chan error, 1)
	rs.mu.Lock()
	rs.waiters[ev.EventID()] = append(rs.waiters[ev.EventID()], ch)
	rs.mu.Unlock()
	data, err := json.Marshal(in)
	if err != nil {
		rs.dropWaiter(ev.EventID(), ch)
		return err
	}
	ack, err := rs.js.Publish(logs.InputSubject, data, nats.MsgId(ev.EventID()), nats.Context(ctx))
	if err != nil {
		rs.dropWaiter(ev.EventID(), ch)
		return fmt.Errorf("roomserver: appending to the input log: %w", err)
	}
	if ack.Duplicate {
		// The log already had this event: it may have been decided
		// while we registered.
		if rs.HasState(ev.EventID()) {
			rs.dropWaiter(ev.EventID(), ch)
			return nil
		}
		rs.mu.Lock()
		v, ok := rs.verdicts[ev.EventID()]
		rs.mu.Unlock()
		if ok {
			rs.dropWaiter(ev.EventID(), ch)
			return v
		}
	}
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		rs.dropWaiter(ev.EventID(), ch)
		return ctx.Err()
	}
}

func (rs *RoomServer) dropWaiter(eventID string, ch chan error) {
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

func (rs *RoomServer) notify(eventID string, verdict error) {
	rs.mu.Lock()
	ws := rs.waiters[eventID]
	delete(rs.waiters, eventID)
	if verdict != nil {
		if len(rs.verdicts) > 10000 {
			clear(rs.verdicts)
		}
		rs.verdicts[eventID] = verdict
	}
	rs.mu.Unlock()
	for _, w := range ws {
		w <- verdict
	}
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

type stateEntry struct {
	Type     string `json:"t"`
	StateKey string `json:"k"`
	EventID  string `json:"e"`
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
		rs.notify(ev.EventID(), nil)
		return nil
	}
	if in.Origin != "" && in.StateBefore == nil {
		if err := rs.fetchMissing(ctx, rules, ev, in.Origin); err != nil {
			return err
		}
	}
	before, err := rs.stateBefore(ctx, rules, ev, in.StateBefore)
	if err != nil {
		var rej *RejectedError
		if errors.As(err, &rej) {
			rs.log.Info("roomserver: rejected event", "event_id", ev.EventID(), "origin", in.Origin, "err", err)
			rs.notify(ev.EventID(), err)
			return nil
		}
		return err
	}
	if verdict := rs.check(ctx, rules, ev, before); verdict != nil {
		rs.log.Info("roomserver: rejected event", "event_id", ev.EventID(), "origin", in.Origin, "err", verdict)
		rs.notify(ev.EventID(), &RejectedError{Err: verdict})
		return nil
	}
	softFailed := false
	if in.Origin != "" && in.StateBefore == nil {
		// Soft failure: an event from another server that the room's
		// current state does not allow is stored but neither shown to
		// clients nor built upon.
		current, err := rs.CurrentState(ev.RoomID())
		if err == nil {
			if err := eventauth.Check(ev, current); err != nil {
				rs.log.Info("roomserver: soft-failed event", "event_id", ev.EventID(), "origin", in.Origin, "err", err)
				softFailed = true
			}
		}
	}
	out, err := rs.store(ctx, rules, ev, before, softFailed)
	if err != nil {
		return err
	}
	if out != nil {
		out.Send = in.Send || isLocal(ev.Sender(), rs.serverName)
		out.Servers = joinedServers(before)
		if err := rs.publish(ctx, out); err != nil {
			return err
		}
	}
	rs.notify(ev.EventID(), nil)
	return nil
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

// stateBefore returns the state before the event: the given state when
// stateIDs is set, empty for a create event, the state after its previous
// event, or, when its previous events' states differ, their resolution
// with stateres.Resolve.
func (rs *RoomServer) stateBefore(ctx context.Context, rules roomversion.Rules, ev *event.PDU, stateIDs []string) (eventauth.StateMap, error) {
	if stateIDs != nil {
		state := eventauth.StateMap{}
		for _, id := range stateIDs {
			p, err := rs.Event(id)
			if err != nil {
				return nil, &RejectedError{Err: fmt.Errorf("state event %s: %w", id, err)}
			}
			state.Add(p)
		}
		return state, nil
	}
	if len(ev.PrevEventIDs()) == 0 {
		if ev.Type() != "m.room.create" {
			return nil, &RejectedError{Err: errors.New("event has no previous events")}
		}
		return eventauth.StateMap{}, nil
	}
	sets := make([]map[eventauth.StateKey]string, 0, len(ev.PrevEventIDs()))
	for _, prev := range ev.PrevEventIDs() {
		sa, err := rs.StateAfter(prev)
		if errors.Is(err, ErrUnknownEvent) {
			return nil, &RejectedError{Err: fmt.Errorf("previous event %s is unknown", prev)}
		}
		if err != nil {
			return nil, err
		}
		sets = append(sets, sa)
	}
	ids, err := rs.resolve(ctx, rules, sets, nil)
	if err != nil {
		return nil, err
	}
	return rs.loadState(ids)
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
		if p.pending != nil && id == p.pending.EventID() {
			out[i] = p.pending
			continue
		}
		ev, err := p.rs.Event(id)
		if err != nil && !errors.Is(err, ErrUnknownEvent) {
			return nil, err
		}
		out[i] = ev
	}
	return out, nil
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

func stateIDs(state eventauth.StateMap) map[eventauth.StateKey]string {
	out := make(map[eventauth.StateKey]string, len(state))
	for k, p := range state {
		out[k] = p.EventID()
	}
	return out
}

// storeOutlier stores an event without state, unless it is stored.
func (rs *RoomServer) storeOutlier(rules roomversion.Rules, ev *event.PDU) error {
	if ev.Type() == "m.room.create" {
		if _, err := rs.db.Exec(`INSERT INTO rs_rooms (room_id, version, extremities, depth) VALUES (?, ?, ?, ?) ON CONFLICT(room_id) DO NOTHING`,
			ev.RoomID(), rules.ID, "[]", 0); err != nil {
			return err
		}
	}
	_, err := rs.db.Exec(`INSERT INTO rs_events (event_id, room_id, json, state_after) VALUES (?, ?, ?, ?) ON CONFLICT(event_id) DO NOTHING`,
		ev.EventID(), ev.RoomID(), string(ev.JSON()), outlierState)
	if err == nil {
		rs.remember(ev)
	}
	return err
}

// store writes the event and the state after it, and unless the event
// soft-failed, the room's forward extremities and current state, in one
// transaction, and returns the output entry (nil for a soft-failed event).
func (rs *RoomServer) store(ctx context.Context, rules roomversion.Rules, ev *event.PDU, before eventauth.StateMap, softFailed bool) (*Output, error) {
	afterIDs := stateIDs(before)
	sk, isState := ev.StateKey()
	if isState {
		afterIDs[eventauth.StateKey{Type: ev.Type(), StateKey: sk}] = ev.EventID()
	}
	after := make([]stateEntry, 0, len(afterIDs))
	for k, id := range afterIDs {
		after = append(after, stateEntry{k.Type, k.StateKey, id})
	}
	sortEntries(after)
	afterJSON, _ := json.Marshal(after)

	// The room's new forward extremities and current state. With one
	// extremity the current state is the state after it; with several,
	// their resolution.
	ext, _, err := rs.LatestEvents(ev.RoomID())
	if err != nil && !errors.Is(err, ErrUnknownRoom) {
		return nil, err
	}
	oldCurrent, err := rs.currentStateIDs(ev.RoomID())
	if err != nil {
		return nil, err
	}
	next, newCurrent := ext, oldCurrent
	if !softFailed {
		next = []string{ev.EventID()}
		for _, x := range ext {
			if !slices.Contains(ev.PrevEventIDs(), x) {
				next = append(next, x)
			}
		}
		if len(next) == 1 {
			newCurrent = afterIDs
		} else {
			sets := []map[eventauth.StateKey]string{afterIDs}
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
	}
	var adds, removes []string
	var stateEvents []StateEvent
	for k, id := range newCurrent {
		if oldCurrent[k] != id {
			adds = append(adds, id)
			if id != ev.EventID() {
				p, err := provider{rs, ev}.one(id)
				if err != nil {
					return nil, err
				}
				stateEvents = append(stateEvents, StateEvent{EventID: id, Event: p.JSON()})
			}
			if old, ok := oldCurrent[k]; ok {
				removes = append(removes, old)
			}
		}
	}
	for k, id := range oldCurrent {
		if _, ok := newCurrent[k]; !ok {
			removes = append(removes, id)
		}
	}

	tx, err := rs.db.Begin()
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`INSERT INTO rs_events (event_id, room_id, json, state_after) VALUES (?, ?, ?, ?)
		ON CONFLICT(event_id) DO UPDATE SET state_after = excluded.state_after`,
		ev.EventID(), ev.RoomID(), string(ev.JSON()), string(afterJSON)); err != nil {
		return nil, err
	}
	nextJSON, _ := json.Marshal(next)
	if _, err := tx.Exec(`INSERT INTO rs_rooms (room_id, version, extremities, depth) VALUES (?, ?, ?, ?)
		ON CONFLICT(room_id) DO UPDATE SET extremities = excluded.extremities,
		depth = CASE WHEN excluded.depth > rs_rooms.depth THEN excluded.depth ELSE rs_rooms.depth END`,
		ev.RoomID(), rules.ID, string(nextJSON), ev.Depth()); err != nil {
		return nil, err
	}
	for k, id := range newCurrent {
		if oldCurrent[k] == id {
			continue
		}
		if _, err := tx.Exec(`INSERT INTO rs_state (room_id, type, state_key, event_id) VALUES (?, ?, ?, ?)
			ON CONFLICT(room_id, type, state_key) DO UPDATE SET event_id = excluded.event_id`,
			ev.RoomID(), k.Type, k.StateKey, id); err != nil {
			return nil, err
		}
	}
	for k := range oldCurrent {
		if _, ok := newCurrent[k]; !ok {
			if _, err := tx.Exec(`DELETE FROM rs_state WHERE room_id = ? AND type = ? AND state_key = ?`, ev.RoomID(), k.Type, k.StateKey); err != nil {
				return nil, err
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	rs.remember(ev)
	if softFailed {
		return nil, nil
	}
	sort.Strings(adds)
	sort.Strings(removes)
	return &Output{RoomID: ev.RoomID(), RoomVersion: rules.ID, EventID: ev.EventID(), Event: ev.JSON(),
		AddsState: adds, RemovesState: removes, StateEvents: stateEvents}, nil
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
// between storing and publishing. The state delta is the event's own
// change (a resolution's other changes were published with it, or are
// lost with the crash; the sync reader's state comes from the events).
func (rs *RoomServer) outputFor(ev *event.PDU, rules roomversion.Rules, in Input) (*Output, error) {
	out := &Output{RoomID: ev.RoomID(), RoomVersion: rules.ID, EventID: ev.EventID(), Event: ev.JSON(),
		Send: in.Send || isLocal(ev.Sender(), rs.serverName)}
	before, err := rs.stateBefore(context.Background(), rules, ev, in.StateBefore)
	if err != nil {
		return nil, err
	}
	out.Servers = joinedServers(before)
	if sk, ok := ev.StateKey(); ok {
		out.AddsState = []string{ev.EventID()}
		if p := before[eventauth.StateKey{Type: ev.Type(), StateKey: sk}]; p != nil {
			out.RemovesState = []string{p.EventID()}
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

func sortEntries(e []stateEntry) {
	for i := 1; i < len(e); i++ {
		for j := i; j > 0 && (e[j].Type < e[j-1].Type || (e[j].Type == e[j-1].Type && e[j].StateKey < e[j-1].StateKey)); j-- {
			e[j], e[j-1] = e[j-1], e[j]
		}
	}
}

func (p provider) one(id string) (*event.PDU, error) {
	if p.pending != nil && id == p.pending.EventID() {
		return p.pending, nil
	}
	return p.rs.Event(id)
}
