package clientapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Access tokens are stored and looked up by their SHA-256 hash: the
// database never holds a usable token, and the lookup compares hashes, so
// its timing says nothing about how much of a guessed token was right.
// A device read from a request carries the hash in its token field.

const tokenKeyPrefix = "h:"

// tokenKey is the stored form of an access token.
func tokenKey(token string) string {
	sum := sha256.Sum256([]byte(token))
	return tokenKeyPrefix + hex.EncodeToString(sum[:])
}

// hashStoredTokens replaces the tokens stored in clear by servers before
// this change with their hashes (once: hashed rows are skipped).
func (a *API) hashStoredTokens(ctx context.Context) error {
	rows, err := a.db.QueryContext(ctx, `SELECT access_token FROM cs_devices`)
	if err != nil {
		return err
	}
	var clear []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return err
		}
		if !strings.HasPrefix(t, tokenKeyPrefix) {
			clear = append(clear, t)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if len(clear) == 0 {
		return nil
	}
	tx, err := a.db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, t := range clear {
		if _, err := tx.Exec(`UPDATE cs_devices SET access_token = ? WHERE access_token = ?`, tokenKey(t), t); err != nil {
			return err
		}
	}
	return tx.Commit()
}
