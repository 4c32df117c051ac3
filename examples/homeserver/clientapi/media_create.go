package clientapi

import (
	"crypto/rand"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/httputil"
)

// Asynchronous uploads (spec v1.7): POST /_matrix/media/v1/create reserves
// a media ID for its caller, PUT /_matrix/media/v3/upload/{server}/{id}
// fills it once. Reservations live in cs_media_pending until filled or
// expired (24 h); the bytes go through the same checks as media.go's
// uploads (declared length, a bounded reader, type and name) into the
// same folder and cs_media.

const mediaPendingSchema = `
CREATE TABLE IF NOT EXISTS cs_media_pending (
	media_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, expires_ts BIGINT NOT NULL);
`

// maxPendingMedia bounds a user's unfilled reservations.
const maxPendingMedia = 100

const pendingMediaLifetime = 24 * time.Hour

func (a *API) mediaCreate(w http.ResponseWriter, r *http.Request, d *device) error {
	now := time.Now()
	if _, err := a.db.ExecContext(r.Context(), `DELETE FROM cs_media_pending WHERE expires_ts < ?`, now.UnixMilli()); err != nil {
		return err
	}
	var n int
	if err := a.db.QueryRowContext(r.Context(), `SELECT COUNT(*) FROM cs_media_pending WHERE user_id = ?`, d.userID).Scan(&n); err != nil {
		return err
	}
	if n >= maxPendingMedia {
		return httputil.Errorf(http.StatusTooManyRequests, "M_LIMIT_EXCEEDED", "too many media IDs created and not yet uploaded")
	}
	mediaID := rand.Text()
	expires := now.Add(pendingMediaLifetime).UnixMilli()
	if _, err := a.db.ExecContext(r.Context(), `INSERT INTO cs_media_pending (media_id, user_id, expires_ts) VALUES (?, ?, ?)`, mediaID, d.userID, expires); err != nil {
		return err
	}
	httputil.WriteJSON(w, 200, map[string]any{"content_uri": "mxc://" + a.serverName + "/" + mediaID, "unused_expires_at": expires})
	return nil
}

func (a *API) mediaUploadTo(w http.ResponseWriter, r *http.Request, d *device) error {
	mediaID := r.PathValue("mediaId")
	if !mediaIDPattern.MatchString(mediaID) {
		return httputil.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "invalid media ID")
	}
	if r.PathValue("serverName") != a.serverName {
		return httputil.Errorf(http.StatusNotFound, "M_NOT_FOUND", "not a media ID of this server")
	}
	var owner string
	var expires int64
	err := a.db.QueryRowContext(r.Context(), `SELECT user_id, expires_ts FROM cs_media_pending WHERE media_id = ?`, mediaID).Scan(&owner, &expires)
	if isNoRows(err) {
		if _, lerr := a.lookupMedia(r.Context(), a.serverName, mediaID); lerr == nil {
			return httputil.Errorf(http.StatusConflict, "M_CANNOT_OVERWRITE_MEDIA", "media already uploaded")
		}
		return httputil.Errorf(http.StatusNotFound, "M_NOT_FOUND", "unknown or expired media ID")
	}
	if err != nil {
		return err
	}
	if owner != d.userID {
		return httputil.Errorf(http.StatusForbidden, "M_FORBIDDEN", "this media ID was created by another user")
	}
	if expires < time.Now().UnixMilli() {
		return httputil.Errorf(http.StatusNotFound, "M_NOT_FOUND", "unknown or expired media ID")
	}
	u, err := a.receive(w, r)
	if err != nil {
		return err
	}
	defer os.Remove(u.tmp) // a no-op once renamed
	ctype, filename, n := u.contentType, u.filename, u.size
	// Claim the reservation and record the upload in one transaction, so
	// that two uploads racing for one ID store one.
	tx, err := a.db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	res, err := tx.Exec(`DELETE FROM cs_media_pending WHERE media_id = ? AND user_id = ?`, mediaID, d.userID)
	if err != nil {
		return err
	}
	if k, _ := res.RowsAffected(); k != 1 {
		return httputil.Errorf(http.StatusConflict, "M_CANNOT_OVERWRITE_MEDIA", "media already uploaded")
	}
	if _, err := tx.Exec(`INSERT INTO cs_media (media_id, content_type, filename, size, user_id, created_ts) VALUES (?, ?, ?, ?, ?, ?)`,
		mediaID, ctype, filename, n, d.userID, time.Now().UnixMilli()); err != nil {
		return err
	}
	if err := os.Rename(u.tmp, filepath.Join(a.mediaDir, mediaID)); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		os.Remove(filepath.Join(a.mediaDir, mediaID))
		return err
	}
	httputil.WriteJSON(w, 200, map[string]any{})
	return nil
}
