// Package federationsender is the outbound side of federation: a reader
// of the room server's output log that gives every new event to be sent
// (our users' events, and joins and leaves other servers handed us to
// relay) to every other server with a joined member in the state before
// the event. The per-destination queue, batching, retries and backoff are
// the library's federation/sender; this package is its Log (a table of
// (destination, position, event) rows filled from the output log) and its
// PositionStore (a table of positions), so a restart resumes without
// losing or repeating what a destination acknowledged.
package federationsender

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/db"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/logs"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/roomserver"
	"github.com/gomatrixlib/gomatrixlib/federation"
	"github.com/gomatrixlib/gomatrixlib/federation/sender"
	"github.com/nats-io/nats.go"
	"github.com/tidwall/gjson"
)

const schema = `
CREATE TABLE IF NOT EXISTS fs_queue (
	pos INTEGER PRIMARY KEY AUTOINCREMENT, destination TEXT NOT NULL,
	event_id TEXT NOT NULL, json TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS fs_queue_dest ON fs_queue(destination, pos);
CREATE TABLE IF NOT EXISTS fs_members (
	room_id TEXT NOT NULL, user_id TEXT NOT NULL, server TEXT NOT NULL,
	membership TEXT NOT NULL, PRIMARY KEY (room_id, user_id));
CREATE TABLE IF NOT EXISTS fs_positions (
	destination TEXT PRIMARY KEY, acked BIGINT NOT NULL,
	txn_id TEXT NOT NULL, txn_last BIGINT NOT NULL);
`

// otherServers returns the servers other than ours with a joined member
// in the room, as the output log has shown them so far. The answer is
// kept per room until apply writes a membership of the room (apply is the
// only writer of fs_members); a read that raced with such a write is not
// kept (gen).
func (fs *FederationSender) otherServers(ctx context.Context, roomID string) ([]string, error) {
	fs.mu.Lock()
	dests, ok := fs.servers[roomID]
	gen := fs.gen
	fs.mu.Unlock()
	if ok {
		return dests, nil
	}
	dests, err := fs.readOtherServers(ctx, roomID)
	if err != nil {
		return nil, err
	}
	fs.mu.Lock()
	if fs.gen == gen {
		if len(fs.servers) >= 10000 {
			clear(fs.servers)
		}
		fs.servers[roomID] = dests
	}
	fs.mu.Unlock()
	return dests, nil
}

func (fs *FederationSender) readOtherServers(ctx context.Context, roomID string) ([]string, error) {
	rows, err := fs.db.QueryContext(ctx, `SELECT DISTINCT server FROM fs_members WHERE room_id = ? AND membership = 'join' ORDER BY server`, roomID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var dests []string
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			return nil, err
		}
		if d != fs.serverName {
			dests = append(dests, d)
		}
	}
	return dests, rows.Err()
}

// SendEDU queues an EDU about the room (typing, a receipt) for every other
// server with a joined member. EDUs are not stored: one lost in a restart
// or to a full queue is not sent again, as the spec allows.
func (fs *FederationSender) SendEDU(ctx context.Context, roomID string, edu json.RawMessage) error {
	dests, err := fs.otherServers(ctx, roomID)
	if err != nil {
		return err
	}
	for _, d := range dests {
		if err := fs.sender.SendEDU(d, edu); err != nil {
			return err
		}
	}
	return nil
}

// FederationSender is the outbound reader.
type FederationSender struct {
	db         *db.DB
	js         nats.JetStreamContext
	serverName string
	log        *slog.Logger
	sender     *sender.Sender
	consumer   *logs.Consumer

	mu      sync.Mutex
	servers map[string][]string // per room, otherServers' answer
	gen     uint64              // bumped by every fs_members write
}

// Options configure the sender.
type Options struct {
	// Backoff for failing destinations; nil: the library's default.
	Backoff *federation.Backoff
}

// New prepares the tables and the library sender over transport.
func New(d *db.DB, js nats.JetStreamContext, serverName string, transport sender.Transport, log *slog.Logger, opts Options) (*FederationSender, error) {
	if _, err := d.Exec(schema); err != nil {
		return nil, fmt.Errorf("federationsender: schema: %w", err)
	}
	fs := &FederationSender{db: d, js: js, serverName: serverName, log: log, servers: map[string][]string{}}
	s, err := sender.New(sender.Options{ServerName: serverName, Transport: transport, Log: queueLog{d}, Store: positions{d},
		Backoff: opts.Backoff, Logger: log,
		OnDelivered: func(dest, txnID string, pdus []sender.PDU, results map[string]json.RawMessage) {
			for id, r := range results {
				var res struct {
					Error string `json:"error"`
				}
				if json.Unmarshal(r, &res) == nil && res.Error != "" {
					log.Info("federationsender: destination refused an event", "destination", dest, "txn_id", txnID, "event_id", id, "error", res.Error)
				}
			}
		}})
	if err != nil {
		return nil, err
	}
	fs.sender = s
	return fs, nil
}

// Start wakes the destinations with unsent events and consumes the output
// log with the durable consumer "federationsender".
func (fs *FederationSender) Start() error {
	dests, err := db.Strings(fs.db.Query(`SELECT DISTINCT q.destination FROM fs_queue q LEFT JOIN fs_positions p ON p.destination = q.destination
		WHERE p.acked IS NULL OR q.pos > p.acked`))
	if err != nil {
		return err
	}
	for _, d := range dests {
		_ = fs.sender.Notify(d)
	}
	c, err := logs.Consume(fs.js, logs.OutputStream, logs.OutputSubject, "federationsender", 64, fs.log, fs.apply)
	if err != nil {
		return err
	}
	fs.consumer = c
	return nil
}

// Stop stops consuming and sending; queued events stay in the table.
func (fs *FederationSender) Stop() {
	if fs.consumer != nil {
		fs.consumer.Stop()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = fs.sender.Close(ctx)
}

// Wake ends a destination's backoff: it just showed it is up.
func (fs *FederationSender) Wake(destination string) {
	_ = fs.sender.Wake(destination)
}

// Stats returns the library sender's counters.
func (fs *FederationSender) Stats() sender.Stats { return fs.sender.Stats() }

// apply queues one output entry for its destinations: the servers with
// a joined member before the event (kept in fs_members from the output
// log itself), minus us. The entry's membership changes are applied after.
func (fs *FederationSender) apply(ctx context.Context, data []byte) error {
	var out roomserver.Output
	if err := json.Unmarshal(data, &out); err != nil {
		fs.log.Warn("federationsender: dropping malformed output entry", "err", err)
		return nil
	}
	var dests []string
	if out.Send {
		var err error
		if dests, err = fs.otherServers(ctx, out.RoomID); err != nil {
			return err
		}
	}
	members := make([]gjson.Result, 0, 1)
	for _, raw := range append([]json.RawMessage{out.Event}, stateEvents(out)...) {
		ev := gjson.ParseBytes(raw)
		if ev.Get("type").Str == "m.room.member" && ev.Get("state_key").Exists() {
			members = append(members, ev)
		}
	}
	if len(dests) == 0 && len(members) == 0 {
		return nil // nothing to queue or record
	}
	tx, err := fs.db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if out.Send {
		for _, d := range dests {
			if _, err := tx.Exec(`INSERT INTO fs_queue (destination, event_id, json) VALUES (?, ?, ?)`, d, out.EventID, string(out.Event)); err != nil {
				return err
			}
		}
	}
	for _, ev := range members {
		userID := ev.Get("state_key").Str
		_, server, _ := strings.Cut(userID, ":")
		if _, err := tx.Exec(`INSERT INTO fs_members (room_id, user_id, server, membership) VALUES (?, ?, ?, ?)
			ON CONFLICT(room_id, user_id) DO UPDATE SET membership = excluded.membership`,
			out.RoomID, userID, server, ev.Get("content.membership").Str); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	if len(members) > 0 {
		fs.mu.Lock()
		fs.gen++
		delete(fs.servers, out.RoomID)
		fs.mu.Unlock()
	}
	for _, d := range dests {
		_ = fs.sender.Notify(d)
	}
	return nil
}

func stateEvents(out roomserver.Output) []json.RawMessage {
	raws := make([]json.RawMessage, 0, len(out.StateEvents))
	for _, se := range out.StateEvents {
		raws = append(raws, se.Event)
	}
	return raws
}

// queueLog is the sender's Log over fs_queue.
type queueLog struct{ db *db.DB }

func (l queueLog) Next(ctx context.Context, destination string, after uint64, max int) ([]sender.PDU, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT pos, json FROM fs_queue WHERE destination = ? AND pos > ? ORDER BY pos LIMIT ?`, destination, int64(after), max)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []sender.PDU
	for rows.Next() {
		var pos int64
		var raw string
		if err := rows.Scan(&pos, &raw); err != nil {
			return nil, err
		}
		out = append(out, sender.PDU{Pos: uint64(pos), JSON: json.RawMessage(raw)})
	}
	return out, rows.Err()
}

// positions is the sender's PositionStore over fs_positions; saving an
// acknowledged position deletes the queue rows it covers.
type positions struct{ db *db.DB }

func (p positions) Load(ctx context.Context, destination string) (sender.Position, error) {
	var pos sender.Position
	var acked, last int64
	err := p.db.QueryRowContext(ctx, `SELECT acked, txn_id, txn_last FROM fs_positions WHERE destination = ?`, destination).Scan(&acked, &pos.TxnID, &last)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return sender.Position{}, nil
		}
		return pos, err
	}
	pos.Acked, pos.TxnLast = uint64(acked), uint64(last)
	return pos, nil
}

func (p positions) Save(ctx context.Context, destination string, pos sender.Position) error {
	tx, err := p.db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`INSERT INTO fs_positions (destination, acked, txn_id, txn_last) VALUES (?, ?, ?, ?)
		ON CONFLICT(destination) DO UPDATE SET acked = excluded.acked, txn_id = excluded.txn_id, txn_last = excluded.txn_last`,
		destination, int64(pos.Acked), pos.TxnID, int64(pos.TxnLast)); err != nil {
		return err
	}
	if _, err := tx.Exec(`DELETE FROM fs_queue WHERE destination = ? AND pos <= ?`, destination, int64(pos.Acked)); err != nil {
		return err
	}
	return tx.Commit()
}
