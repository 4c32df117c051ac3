// Package keyserver keeps the end-to-end encryption keys of local devices:
// device keys, one-time keys and fallback keys, and a stream of "this
// user's device list changed" entries. The client API writes to it
// (/keys/upload, device deletion) and reads it (/keys/query, /keys/claim,
// /keys/changes); the /sync response reads the one-time key counts, the
// unused fallback key types and the device list changes from it.
//
// Remote users' keys (federation /user/keys/query and /user/keys/claim)
// are not handled: queries and claims for them are answered without them.
package keyserver

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/db"
)

const schema = `
CREATE TABLE IF NOT EXISTS ks_device_keys (
	user_id TEXT NOT NULL, device_id TEXT NOT NULL, key_json TEXT NOT NULL,
	PRIMARY KEY (user_id, device_id));
CREATE TABLE IF NOT EXISTS ks_one_time_keys (
	id INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL, device_id TEXT NOT NULL,
	algorithm TEXT NOT NULL, key_id TEXT NOT NULL, key_json TEXT NOT NULL,
	UNIQUE (user_id, device_id, algorithm, key_id));
CREATE TABLE IF NOT EXISTS ks_fallback_keys (
	user_id TEXT NOT NULL, device_id TEXT NOT NULL, algorithm TEXT NOT NULL,
	key_id TEXT NOT NULL, key_json TEXT NOT NULL, used INTEGER NOT NULL,
	PRIMARY KEY (user_id, device_id, algorithm));
CREATE TABLE IF NOT EXISTS ks_changes (
	pos INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL);
`

// MaxKeysPerUpload bounds the one-time and fallback keys of one upload.
const MaxKeysPerUpload = 1000

// Error is a bad request: the client API answers it with 400 and Code.
type Error struct {
	Code, Msg string
}

func (e *Error) Error() string { return "keyserver: " + e.Msg }

func bad(code, format string, args ...any) error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// KeyServer is the key store.
type KeyServer struct {
	db *db.DB
	// claimMu serialises claims and uploads of one-time keys, so that a
	// key is handed out at most once (SQLite has one connection; this
	// also covers PostgreSQL without row locks).
	claimMu sync.Mutex

	mu   sync.Mutex
	wake chan struct{}
}

// New prepares the tables.
func New(d *db.DB) (*KeyServer, error) {
	if _, err := d.Exec(schema); err != nil {
		return nil, fmt.Errorf("keyserver: schema: %w", err)
	}
	return &KeyServer{db: d, wake: make(chan struct{})}, nil
}

// Changed returns a channel closed at the next device list change.
func (k *KeyServer) Changed() <-chan struct{} {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.wake
}

func (k *KeyServer) notify() {
	k.mu.Lock()
	close(k.wake)
	k.wake = make(chan struct{})
	k.mu.Unlock()
}

// DeviceKeys is the checked part of an uploaded device_keys object.
type deviceKeys struct {
	UserID     string                       `json:"user_id"`
	DeviceID   string                       `json:"device_id"`
	Algorithms []string                     `json:"algorithms"`
	Keys       map[string]string            `json:"keys"`
	Signatures map[string]map[string]string `json:"signatures"`
}

// Upload stores a device's keys: device keys (replacing the stored ones),
// one-time keys ("algorithm:key_id" to key) and fallback keys (at most one
// per algorithm, replacing the stored one). It returns the device's
// unclaimed one-time key counts. Nothing is stored if any part is bad.
func (k *KeyServer) Upload(ctx context.Context, userID, deviceID string, devKeys json.RawMessage, otks, fallback map[string]json.RawMessage) (map[string]int, error) {
	if len(devKeys) > 0 && string(devKeys) != "null" {
		var dk deviceKeys
		if err := json.Unmarshal(devKeys, &dk); err != nil {
			return nil, bad("M_BAD_JSON", "device_keys: %v", err)
		}
		if dk.UserID != userID || dk.DeviceID != deviceID {
			return nil, bad("M_INVALID_PARAM", "device_keys must be for the logged-in user and device")
		}
		if len(dk.Algorithms) == 0 || len(dk.Keys) == 0 || len(dk.Signatures[userID]) == 0 {
			return nil, bad("M_BAD_JSON", "device_keys needs algorithms, keys and the user's signatures")
		}
	} else {
		devKeys = nil
	}
	if len(otks)+len(fallback) > MaxKeysPerUpload {
		return nil, bad("M_TOO_LARGE", "more than %d keys in one upload", MaxKeysPerUpload)
	}
	type key struct{ alg, id, json string }
	parse := func(what string, m map[string]json.RawMessage) ([]key, error) {
		var out []key
		for name, v := range m {
			alg, kid, ok := strings.Cut(name, ":")
			if !ok || alg == "" || kid == "" || len(name) > 255 {
				return nil, bad("M_INVALID_PARAM", "%s: key name %q is not algorithm:key_id", what, name)
			}
			t := strings.TrimSpace(string(v))
			if !strings.HasPrefix(t, "{") && !strings.HasPrefix(t, `"`) {
				return nil, bad("M_BAD_JSON", "%s: key %q must be a string or an object", what, name)
			}
			out = append(out, key{alg, kid, t})
		}
		sort.Slice(out, func(i, j int) bool { return out[i].alg+":"+out[i].id < out[j].alg+":"+out[j].id })
		return out, nil
	}
	oneTime, err := parse("one_time_keys", otks)
	if err != nil {
		return nil, err
	}
	fb, err := parse("fallback_keys", fallback)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, f := range fb {
		if seen[f.alg] {
			return nil, bad("M_INVALID_PARAM", "fallback_keys: more than one key for %s", f.alg)
		}
		seen[f.alg] = true
	}

	k.claimMu.Lock()
	defer k.claimMu.Unlock()
	tx, err := k.db.Begin()
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	changed := false
	if devKeys != nil {
		var old string
		err := tx.QueryRow(`SELECT key_json FROM ks_device_keys WHERE user_id = ? AND device_id = ?`, userID, deviceID).Scan(&old)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			changed = true
		case err != nil:
			return nil, err
		default:
			changed = !sameJSON(old, devKeys)
		}
		if changed {
			if _, err := tx.Exec(`DELETE FROM ks_device_keys WHERE user_id = ? AND device_id = ?`, userID, deviceID); err != nil {
				return nil, err
			}
			if _, err := tx.Exec(`INSERT INTO ks_device_keys (user_id, device_id, key_json) VALUES (?, ?, ?)`, userID, deviceID, string(devKeys)); err != nil {
				return nil, err
			}
			if _, err := tx.Exec(`INSERT INTO ks_changes (user_id) VALUES (?)`, userID); err != nil {
				return nil, err
			}
		}
	}
	for _, o := range oneTime {
		var old string
		err := tx.QueryRow(`SELECT key_json FROM ks_one_time_keys WHERE user_id = ? AND device_id = ? AND algorithm = ? AND key_id = ?`, userID, deviceID, o.alg, o.id).Scan(&old)
		if err == nil {
			if !sameJSON(old, []byte(o.json)) {
				return nil, bad("M_INVALID_PARAM", "one-time key %s:%s already exists with other content", o.alg, o.id)
			}
			continue
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return nil, err
		}
		if _, err := tx.Exec(`INSERT INTO ks_one_time_keys (user_id, device_id, algorithm, key_id, key_json) VALUES (?, ?, ?, ?, ?)`, userID, deviceID, o.alg, o.id, o.json); err != nil {
			return nil, err
		}
	}
	for _, f := range fb {
		if _, err := tx.Exec(`DELETE FROM ks_fallback_keys WHERE user_id = ? AND device_id = ? AND algorithm = ?`, userID, deviceID, f.alg); err != nil {
			return nil, err
		}
		if _, err := tx.Exec(`INSERT INTO ks_fallback_keys (user_id, device_id, algorithm, key_id, key_json, used) VALUES (?, ?, ?, ?, ?, 0)`, userID, deviceID, f.alg, f.id, f.json); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	if changed {
		k.notify()
	}
	counts, _, err := k.Counts(ctx, userID, deviceID)
	return counts, err
}

func sameJSON(a string, b []byte) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}

// Counts returns the device's unclaimed one-time key counts per algorithm
// and the algorithms of its fallback keys not yet handed out.
func (k *KeyServer) Counts(ctx context.Context, userID, deviceID string) (map[string]int, []string, error) {
	counts := map[string]int{}
	rows, err := k.db.QueryContext(ctx, `SELECT algorithm, COUNT(*) FROM ks_one_time_keys WHERE user_id = ? AND device_id = ? GROUP BY algorithm`, userID, deviceID)
	if err != nil {
		return nil, nil, err
	}
	for rows.Next() {
		var alg string
		var n int
		if err := rows.Scan(&alg, &n); err != nil {
			rows.Close()
			return nil, nil, err
		}
		counts[alg] = n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	unused := []string{}
	rows, err = k.db.QueryContext(ctx, `SELECT algorithm FROM ks_fallback_keys WHERE user_id = ? AND device_id = ? AND used = 0 ORDER BY algorithm`, userID, deviceID)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var alg string
		if err := rows.Scan(&alg); err != nil {
			return nil, nil, err
		}
		unused = append(unused, alg)
	}
	return counts, unused, rows.Err()
}

// Query returns the device keys of the users' devices: for each user, the
// listed devices or, for an empty list, all of them. Devices without
// keys are left out.
func (k *KeyServer) Query(ctx context.Context, users map[string][]string) (map[string]map[string]json.RawMessage, error) {
	out := map[string]map[string]json.RawMessage{}
	for user, devices := range users {
		want := map[string]bool{}
		for _, d := range devices {
			want[d] = true
		}
		rows, err := k.db.QueryContext(ctx, `SELECT device_id, key_json FROM ks_device_keys WHERE user_id = ?`, user)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var dev, js string
			if err := rows.Scan(&dev, &js); err != nil {
				rows.Close()
				return nil, err
			}
			if len(want) > 0 && !want[dev] {
				continue
			}
			if out[user] == nil {
				out[user] = map[string]json.RawMessage{}
			}
			out[user][dev] = json.RawMessage(js)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Claim hands out one key per requested (user, device, algorithm): the
// oldest unclaimed one-time key, removed as it is handed out, or else the
// fallback key (which stays, marked used). Unknown users and devices, and
// devices without a key of the algorithm, are left out.
func (k *KeyServer) Claim(ctx context.Context, req map[string]map[string]string) (map[string]map[string]map[string]json.RawMessage, error) {
	k.claimMu.Lock()
	defer k.claimMu.Unlock()
	out := map[string]map[string]map[string]json.RawMessage{}
	tx, err := k.db.Begin()
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	for user, devs := range req {
		for dev, alg := range devs {
			var rowID int64
			var kid, js string
			err := tx.QueryRow(`SELECT id, key_id, key_json FROM ks_one_time_keys WHERE user_id = ? AND device_id = ? AND algorithm = ? ORDER BY id LIMIT 1`, user, dev, alg).Scan(&rowID, &kid, &js)
			switch {
			case err == nil:
				if _, err := tx.Exec(`DELETE FROM ks_one_time_keys WHERE id = ?`, rowID); err != nil {
					return nil, err
				}
			case errors.Is(err, sql.ErrNoRows):
				err = tx.QueryRow(`SELECT key_id, key_json FROM ks_fallback_keys WHERE user_id = ? AND device_id = ? AND algorithm = ?`, user, dev, alg).Scan(&kid, &js)
				if errors.Is(err, sql.ErrNoRows) {
					continue
				}
				if err != nil {
					return nil, err
				}
				if _, err := tx.Exec(`UPDATE ks_fallback_keys SET used = 1 WHERE user_id = ? AND device_id = ? AND algorithm = ?`, user, dev, alg); err != nil {
					return nil, err
				}
			default:
				return nil, err
			}
			if out[user] == nil {
				out[user] = map[string]map[string]json.RawMessage{}
			}
			out[user][dev] = map[string]json.RawMessage{alg + ":" + kid: json.RawMessage(js)}
		}
	}
	return out, tx.Commit()
}

// DeleteDevice drops a device's keys and records a device list change
// for its user.
func (k *KeyServer) DeleteDevice(ctx context.Context, userID, deviceID string) error {
	k.claimMu.Lock()
	defer k.claimMu.Unlock()
	tx, err := k.db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, t := range []string{"ks_device_keys", "ks_one_time_keys", "ks_fallback_keys"} {
		if _, err := tx.Exec(`DELETE FROM `+t+` WHERE user_id = ? AND device_id = ?`, userID, deviceID); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(`INSERT INTO ks_changes (user_id) VALUES (?)`, userID); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	k.notify()
	return nil
}

// MarkChanged records a device list change for the user (e.g. a device
// renamed).
func (k *KeyServer) MarkChanged(ctx context.Context, userID string) error {
	if _, err := k.db.ExecContext(ctx, `INSERT INTO ks_changes (user_id) VALUES (?)`, userID); err != nil {
		return err
	}
	k.notify()
	return nil
}

// Latest returns the newest position of the device list change stream.
func (k *KeyServer) Latest(ctx context.Context) (int64, error) {
	var pos int64
	err := k.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(pos), 0) FROM ks_changes`).Scan(&pos)
	return pos, err
}

// ChangedBetween returns the users whose device lists changed at
// positions in (from, to], sorted.
func (k *KeyServer) ChangedBetween(ctx context.Context, from, to int64) ([]string, error) {
	rows, err := k.db.QueryContext(ctx, `SELECT DISTINCT user_id FROM ks_changes WHERE pos > ? AND pos <= ? ORDER BY user_id`, from, to)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}
