package clientapi

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/hex"
	"errors"
	"net/http"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/db"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/httputil"
	"golang.org/x/crypto/bcrypt"
)

const schema = `
CREATE TABLE IF NOT EXISTS cs_accounts (
	user_id TEXT PRIMARY KEY, password_hash TEXT NOT NULL, displayname TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS cs_devices (
	access_token TEXT PRIMARY KEY, user_id TEXT NOT NULL, device_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cs_registration_tokens (
	token TEXT PRIMARY KEY, uses_allowed BIGINT, completed BIGINT NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS cs_filters (
	id INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL, json TEXT NOT NULL);
`

type device struct {
	userID, deviceID, token string
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (a *API) createAccount(ctx context.Context, userID, password string) error {
	hash, err := bcrypt.GenerateFromPassword([]byte(password), a.bcryptCost)
	if err != nil {
		return err
	}
	_, err = a.db.ExecContext(ctx, `INSERT INTO cs_accounts (user_id, password_hash) VALUES (?, ?)`, userID, string(hash))
	return err
}

func (a *API) accountExists(ctx context.Context, userID string) (bool, error) {
	var n int
	err := a.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM cs_accounts WHERE user_id = ?`, userID).Scan(&n)
	return n > 0, err
}

func (a *API) checkPassword(ctx context.Context, userID, password string) error {
	var hash string
	err := a.db.QueryRowContext(ctx, `SELECT password_hash FROM cs_accounts WHERE user_id = ?`, userID).Scan(&hash)
	if errors.Is(err, sql.ErrNoRows) {
		return httputil.Errorf(http.StatusForbidden, "M_FORBIDDEN", "invalid username or password")
	}
	if err != nil {
		return err
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil {
		return httputil.Errorf(http.StatusForbidden, "M_FORBIDDEN", "invalid username or password")
	}
	return nil
}

func (a *API) newDevice(ctx context.Context, userID, deviceID, name string) (*device, error) {
	if deviceID == "" {
		deviceID = "D" + randomHex(5)
	}
	d := &device{userID: userID, deviceID: deviceID, token: "syt_" + randomHex(20)}
	if _, err := a.db.ExecContext(ctx, `INSERT INTO cs_devices (access_token, user_id, device_id) VALUES (?, ?, ?)`, tokenKey(d.token), d.userID, d.deviceID); err != nil {
		return nil, err
	}
	if name != "" {
		if err := a.setDeviceName(ctx, userID, deviceID, name); err != nil {
			return nil, err
		}
	}
	return d, nil
}

func (a *API) deviceByToken(ctx context.Context, token string) (*device, error) {
	key := tokenKey(token)
	if c, ok := a.tokens.get(key); ok {
		return &device{userID: c.userID, deviceID: c.deviceID, token: token}, nil
	}
	gen := a.tokens.generation()
	d := &device{token: token}
	var stored string
	err := a.db.QueryRowContext(ctx, `SELECT access_token, user_id, device_id FROM cs_devices WHERE access_token = ?`, key).Scan(&stored, &d.userID, &d.deviceID)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && subtle.ConstantTimeCompare([]byte(stored), []byte(key)) != 1) {
		return nil, httputil.ErrUnknownToken
	}
	if err != nil {
		return nil, err
	}
	a.tokens.put(key, device{userID: d.userID, deviceID: d.deviceID}, gen)
	return d, nil
}

func (a *API) displayName(ctx context.Context, userID string) (string, bool, error) {
	var name string
	err := a.db.QueryRowContext(ctx, `SELECT displayname FROM cs_accounts WHERE user_id = ?`, userID).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	return name, err == nil, err
}

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

// deviceIDs lists a user's devices.
func (a *API) deviceIDs(ctx context.Context, userID string) ([]string, error) {
	return db.Strings(a.db.QueryContext(ctx, `SELECT DISTINCT device_id FROM cs_devices WHERE user_id = ?`, userID))
}

// tokenKey is what the database keeps of an access token: its SHA-256,
// so that neither a copy of the database nor the timing of the index
// lookup gives away tokens (the lookup compares hashes, which an attacker
// cannot steer toward a token), and the found row is compared in constant
// time.
func tokenKey(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "h:" + hex.EncodeToString(sum[:])
}

// hashStoredTokens replaces access tokens that older versions stored as
// they are by their tokenKey.
func hashStoredTokens(d *db.DB) error {
	rows, err := d.Query(`SELECT access_token FROM cs_devices WHERE access_token NOT LIKE 'h:%'`)
	if err != nil {
		return err
	}
	var plain []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return err
		}
		plain = append(plain, t)
	}
	rows.Close()
	for _, t := range plain {
		if _, err := d.Exec(`UPDATE cs_devices SET access_token = ? WHERE access_token = ?`, tokenKey(t), t); err != nil {
			return err
		}
	}
	return rows.Err()
}
