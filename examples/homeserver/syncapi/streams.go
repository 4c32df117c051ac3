package syncapi

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/db"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/logs"
)

// Pos is a position in every stream /sync serves: the room events (the
// output log), and the typing, receipt, presence, to-device and account
// data logs. One since token resumes them all.
type Pos struct {
	Events, Typing, Receipts, Presence, ToDevice, AccountData, DeviceLists int64
}

// String writes the position as a token: "s<events>_<typing>_<receipts>_
// <presence>_<to-device>_<account data>_<device lists>".
func (p Pos) String() string {
	return fmt.Sprintf("s%d_%d_%d_%d_%d_%d_%d", p.Events, p.Typing, p.Receipts, p.Presence, p.ToDevice, p.AccountData, p.DeviceLists)
}

func (p *Pos) fields() []*int64 {
	return []*int64{&p.Events, &p.Typing, &p.Receipts, &p.Presence, &p.ToDevice, &p.AccountData, &p.DeviceLists}
}

// ParsePos reads a token; "" is the zero position and "s<n>" (an older
// token, or a /messages token) is a position in the room events only.
func ParsePos(t string) (Pos, error) {
	var p Pos
	if t == "" {
		return p, nil
	}
	if !strings.HasPrefix(t, "s") {
		return p, fmt.Errorf("syncapi: bad token %q", t)
	}
	parts := strings.Split(t[1:], "_")
	fs := p.fields()
	if len(parts) > len(fs) {
		return p, fmt.Errorf("syncapi: bad token %q", t)
	}
	for i, part := range parts {
		n, err := strconv.ParseInt(part, 10, 64)
		if err != nil || n < 0 {
			return Pos{}, fmt.Errorf("syncapi: bad token %q", t)
		}
		*fs[i] = n
	}
	return p, nil
}

// after reports whether any stream of p is past q.
func (p Pos) after(q Pos) bool {
	pf, qf := p.fields(), q.fields()
	for i := range pf {
		if *pf[i] > *qf[i] {
			return true
		}
	}
	return false
}

// clamp limits every stream of p to latest.
func (p Pos) clamp(latest Pos) Pos {
	pf, lf := p.fields(), latest.fields()
	for i := range pf {
		*pf[i] = min(*pf[i], *lf[i])
	}
	return p
}

const streamSchema = `
CREATE TABLE IF NOT EXISTS sync_stream_pos (
	stream TEXT PRIMARY KEY, pos BIGINT NOT NULL, seq BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS sync_typing (
	room_id TEXT NOT NULL, user_id TEXT NOT NULL, expires_ts BIGINT NOT NULL,
	pos BIGINT NOT NULL, PRIMARY KEY (room_id, user_id));
CREATE TABLE IF NOT EXISTS sync_receipts (
	room_id TEXT NOT NULL, user_id TEXT NOT NULL, type TEXT NOT NULL, thread_id TEXT NOT NULL,
	event_id TEXT NOT NULL, ts BIGINT NOT NULL, pos BIGINT NOT NULL,
	PRIMARY KEY (room_id, user_id, type, thread_id));
CREATE INDEX IF NOT EXISTS sync_receipts_pos ON sync_receipts(room_id, pos);
CREATE TABLE IF NOT EXISTS sync_presence (
	user_id TEXT PRIMARY KEY, presence TEXT NOT NULL, status_msg TEXT,
	last_active_ts BIGINT NOT NULL, pos BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS sync_to_device (
	id INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL, device_id TEXT NOT NULL,
	sender TEXT NOT NULL, type TEXT NOT NULL, content TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS sync_to_device_dev ON sync_to_device(user_id, device_id, id);
CREATE TABLE IF NOT EXISTS sync_account_data (
	user_id TEXT NOT NULL, room_id TEXT NOT NULL, type TEXT NOT NULL,
	content TEXT NOT NULL, pos BIGINT NOT NULL, PRIMARY KEY (user_id, room_id, type));
CREATE INDEX IF NOT EXISTS sync_account_data_pos ON sync_account_data(user_id, pos);
CREATE TABLE IF NOT EXISTS sync_device_lists (
	user_id TEXT PRIMARY KEY, pos BIGINT NOT NULL);
`

// Entries of the logs besides the room events.

// TypingEntry says a user is (or stopped) typing in a room.
type TypingEntry struct {
	RoomID    string `json:"room_id"`
	UserID    string `json:"user_id"`
	Typing    bool   `json:"typing"`
	ExpiresTS int64  `json:"expires_ts,omitempty"`
}

// ReceiptEntry is a read receipt.
type ReceiptEntry struct {
	RoomID   string `json:"room_id"`
	UserID   string `json:"user_id"`
	Type     string `json:"type"` // m.read or m.read.private
	ThreadID string `json:"thread_id,omitempty"`
	EventID  string `json:"event_id"`
	TS       int64  `json:"ts"`
}

// PresenceEntry is a user's presence.
type PresenceEntry struct {
	UserID       string  `json:"user_id"`
	Presence     string  `json:"presence"`
	StatusMsg    *string `json:"status_msg,omitempty"`
	LastActiveTS int64   `json:"last_active_ts"`
}

// ToDeviceEntry carries messages to devices; the writer has expanded "*"
// into the user's devices.
type ToDeviceEntry struct {
	Sender   string                                `json:"sender"`
	Type     string                                `json:"type"`
	Messages map[string]map[string]json.RawMessage `json:"messages"`
}

// AccountDataEntry is one piece of account data (room "" for global).
type AccountDataEntry struct {
	UserID  string          `json:"user_id"`
	RoomID  string          `json:"room_id"`
	Type    string          `json:"type"`
	Content json.RawMessage `json:"content"`
}

// DeviceListEntry says a user's devices or device keys changed.
type DeviceListEntry struct {
	UserID string `json:"user_id"`
}

// streamReader applies one log's entries to its table.
type streamReader struct {
	stream logs.Stream
	field  func(*Pos) *int64
	apply  func(tx *db.Tx, seq int64, data []byte) (pos int64, err error)
}

func (s *SyncAPI) streamReaders() []streamReader {
	return []streamReader{
		{logs.Typing, func(p *Pos) *int64 { return &p.Typing }, applyTyping},
		{logs.Receipts, func(p *Pos) *int64 { return &p.Receipts }, applyReceipt},
		{logs.Presence, func(p *Pos) *int64 { return &p.Presence }, applyPresence},
		{logs.ToDevice, func(p *Pos) *int64 { return &p.ToDevice }, applyToDevice},
		{logs.AccountData, func(p *Pos) *int64 { return &p.AccountData }, applyAccountData},
		{logs.DeviceLists, func(p *Pos) *int64 { return &p.DeviceLists }, applyDeviceList},
	}
}

// loadStreamPositions reads where each stream reader stopped.
func (s *SyncAPI) loadStreamPositions() error {
	for _, r := range s.streamReaders() {
		var pos, seq int64
		err := s.db.QueryRow(`SELECT pos, seq FROM sync_stream_pos WHERE stream = ?`, r.stream.Name).Scan(&pos, &seq)
		if err != nil && !isNoRows(err) {
			return err
		}
		*r.field(&s.pos) = pos
		s.applied[r.stream.Name] = seq
	}
	return nil
}

// startStreams consumes every log besides the room events.
func (s *SyncAPI) startStreams() error {
	for _, r := range s.streamReaders() {
		c, err := logs.ConsumeSeq(s.js, r.stream.Name, r.stream.Subject, "syncapi", 64, s.log,
			func(_ context.Context, seq uint64, data []byte) error { return s.applyStream(r, int64(seq), data) })
		if err != nil {
			return err
		}
		s.streamConsumers = append(s.streamConsumers, c)
	}
	return nil
}

// applyStream applies one entry and the reader's new position in one
// transaction; an entry at or below the recorded sequence is a
// redelivery and is skipped.
func (s *SyncAPI) applyStream(r streamReader, seq int64, data []byte) error {
	s.mu.Lock()
	done := seq <= s.applied[r.stream.Name]
	s.mu.Unlock()
	if done {
		return nil
	}
	tx, err := s.db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	pos, err := r.apply(tx, seq, data)
	if err != nil {
		return err
	}
	s.mu.Lock()
	cur := *r.field(&s.pos)
	s.mu.Unlock()
	pos = max(pos, cur)
	if _, err := tx.Exec(`INSERT INTO sync_stream_pos (stream, pos, seq) VALUES (?, ?, ?)
		ON CONFLICT(stream) DO UPDATE SET pos = excluded.pos, seq = excluded.seq`, r.stream.Name, pos, seq); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	s.mu.Lock()
	*r.field(&s.pos) = pos
	s.applied[r.stream.Name] = seq
	close(s.wake)
	s.wake = make(chan struct{})
	s.mu.Unlock()
	return nil
}

// WaitApplied blocks until the reader of the stream has applied the entry
// with sequence seq (so that a writer can answer after its change is
// visible), ctx ends or five seconds pass.
func (s *SyncAPI) WaitApplied(ctx context.Context, stream logs.Stream, seq uint64) error {
	deadline := time.NewTimer(5 * time.Second)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		applied, wake := s.applied[stream.Name], s.wake
		s.mu.Unlock()
		if applied >= int64(seq) {
			return nil
		}
		select {
		case <-wake:
		case <-deadline.C:
			return fmt.Errorf("syncapi: %s entry %d not applied within 5 s", stream.Name, seq)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func applyTyping(tx *db.Tx, seq int64, data []byte) (int64, error) {
	var e TypingEntry
	if json.Unmarshal(data, &e) != nil || e.RoomID == "" || e.UserID == "" {
		return 0, nil // malformed: skipped, the position does not move
	}
	expires := e.ExpiresTS
	if !e.Typing {
		expires = 0
	}
	_, err := tx.Exec(`INSERT INTO sync_typing (room_id, user_id, expires_ts, pos) VALUES (?, ?, ?, ?)
		ON CONFLICT(room_id, user_id) DO UPDATE SET expires_ts = excluded.expires_ts, pos = excluded.pos`, e.RoomID, e.UserID, expires, seq)
	return seq, err
}

func applyReceipt(tx *db.Tx, seq int64, data []byte) (int64, error) {
	var e ReceiptEntry
	if json.Unmarshal(data, &e) != nil || e.RoomID == "" || e.UserID == "" || e.EventID == "" {
		return 0, nil
	}
	_, err := tx.Exec(`INSERT INTO sync_receipts (room_id, user_id, type, thread_id, event_id, ts, pos) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(room_id, user_id, type, thread_id) DO UPDATE SET event_id = excluded.event_id, ts = excluded.ts, pos = excluded.pos`,
		e.RoomID, e.UserID, e.Type, e.ThreadID, e.EventID, e.TS, seq)
	return seq, err
}

func applyPresence(tx *db.Tx, seq int64, data []byte) (int64, error) {
	var e PresenceEntry
	if json.Unmarshal(data, &e) != nil || e.UserID == "" {
		return 0, nil
	}
	_, err := tx.Exec(`INSERT INTO sync_presence (user_id, presence, status_msg, last_active_ts, pos) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT(user_id) DO UPDATE SET presence = excluded.presence, status_msg = excluded.status_msg,
		last_active_ts = excluded.last_active_ts, pos = excluded.pos`, e.UserID, e.Presence, e.StatusMsg, e.LastActiveTS, seq)
	return seq, err
}

func applyToDevice(tx *db.Tx, _ int64, data []byte) (int64, error) {
	var e ToDeviceEntry
	if json.Unmarshal(data, &e) != nil || e.Sender == "" {
		return 0, nil
	}
	var last int64
	for user, devices := range e.Messages {
		for device, content := range devices {
			if err := tx.QueryRow(`INSERT INTO sync_to_device (user_id, device_id, sender, type, content) VALUES (?, ?, ?, ?, ?) RETURNING id`,
				user, device, e.Sender, e.Type, string(content)).Scan(&last); err != nil {
				return 0, err
			}
		}
	}
	return last, nil
}

func applyAccountData(tx *db.Tx, seq int64, data []byte) (int64, error) {
	var e AccountDataEntry
	if json.Unmarshal(data, &e) != nil || e.UserID == "" || e.Type == "" {
		return 0, nil
	}
	_, err := tx.Exec(`INSERT INTO sync_account_data (user_id, room_id, type, content, pos) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT(user_id, room_id, type) DO UPDATE SET content = excluded.content, pos = excluded.pos`,
		e.UserID, e.RoomID, e.Type, string(e.Content), seq)
	return seq, err
}

func applyDeviceList(tx *db.Tx, seq int64, data []byte) (int64, error) {
	var e DeviceListEntry
	if json.Unmarshal(data, &e) != nil || e.UserID == "" {
		return 0, nil
	}
	_, err := tx.Exec(`INSERT INTO sync_device_lists (user_id, pos) VALUES (?, ?)
		ON CONFLICT(user_id) DO UPDATE SET pos = excluded.pos`, e.UserID, seq)
	return seq, err
}
