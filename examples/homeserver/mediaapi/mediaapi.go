// Package mediaapi is the homeserver's content repository: uploads stored
// as files in the data folder (DataDir/media/<media ID>), their content
// type, file name and size in the database, and thumbnails of JPEG and PNG
// images made on request (scaled or cropped with golang.org/x/image/draw).
//
// Media IDs are generated here from [A-Za-z0-9_-] and every ID read from a
// request is checked against that alphabet before it names a file, so a
// path can never leave the media folder. Uploads are bounded: a declared
// Content-Length over the limit is refused before reading, and the body is
// read through a limit, so nothing over the limit is kept.
package mediaapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/db"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/httputil"
	"golang.org/x/image/draw"
)

const schema = `
CREATE TABLE IF NOT EXISTS media (
	media_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, content_type TEXT NOT NULL,
	filename TEXT NOT NULL, size BIGINT NOT NULL, created_ts BIGINT NOT NULL,
	pending INTEGER NOT NULL);
`

// Media is the content repository.
type Media struct {
	db         *db.DB
	dir        string
	serverName string
	// MaxBytes bounds one upload.
	MaxBytes int64
}

// Info describes a stored upload.
type Info struct {
	MediaID, UserID, ContentType, Filename string
	Size                                   int64
	Pending                                bool
}

// New prepares the table and the folder.
func New(d *db.DB, dataDir, serverName string, maxBytes int64) (*Media, error) {
	if _, err := d.Exec(schema); err != nil {
		return nil, fmt.Errorf("mediaapi: schema: %w", err)
	}
	dir := filepath.Join(dataDir, "media")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return &Media{db: d, dir: dir, serverName: serverName, MaxBytes: maxBytes}, nil
}

// ValidID reports whether s is a media ID (or server name part) this
// server accepts: 1 to 255 characters of [A-Za-z0-9_-].
func ValidID(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func newID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

func tooLarge() error {
	return httputil.Errorf(http.StatusRequestEntityTooLarge, "M_TOO_LARGE", "upload is larger than the server's limit")
}

// URI returns the mxc:// URI of a local media ID.
func (m *Media) URI(mediaID string) string { return "mxc://" + m.serverName + "/" + mediaID }

// Upload stores a new upload and returns its media ID.
func (m *Media) Upload(ctx context.Context, userID, contentType, filename string, body io.Reader, contentLength int64) (string, error) {
	id := newID()
	if _, err := m.db.ExecContext(ctx, `INSERT INTO media (media_id, user_id, content_type, filename, size, created_ts, pending) VALUES (?, ?, '', '', 0, ?, 1)`,
		id, userID, time.Now().UnixMilli()); err != nil {
		return "", err
	}
	if err := m.write(ctx, id, contentType, filename, body, contentLength); err != nil {
		_, _ = m.db.ExecContext(context.Background(), `DELETE FROM media WHERE media_id = ?`, id)
		return "", err
	}
	return id, nil
}

// Create reserves a media ID for a later UploadTo by the same user.
func (m *Media) Create(ctx context.Context, userID string) (string, error) {
	var pending int
	if err := m.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM media WHERE user_id = ? AND pending = 1`, userID).Scan(&pending); err != nil {
		return "", err
	}
	if pending >= 100 {
		return "", httputil.Errorf(http.StatusTooManyRequests, "M_LIMIT_EXCEEDED", "too many pending uploads")
	}
	id := newID()
	_, err := m.db.ExecContext(ctx, `INSERT INTO media (media_id, user_id, content_type, filename, size, created_ts, pending) VALUES (?, ?, '', '', 0, ?, 1)`,
		id, userID, time.Now().UnixMilli())
	return id, err
}

// UploadTo fills a media ID reserved with Create.
func (m *Media) UploadTo(ctx context.Context, userID, server, mediaID, contentType, filename string, body io.Reader, contentLength int64) error {
	if server != m.serverName || !ValidID(mediaID) {
		return httputil.Errorf(http.StatusNotFound, "M_NOT_FOUND", "unknown media")
	}
	info, err := m.info(ctx, mediaID)
	if err != nil {
		return err
	}
	if info.UserID != userID {
		return httputil.Errorf(http.StatusForbidden, "M_FORBIDDEN", "this media ID was created by another user")
	}
	if !info.Pending {
		return httputil.Errorf(http.StatusConflict, "M_CANNOT_OVERWRITE_MEDIA", "media already uploaded")
	}
	return m.write(ctx, mediaID, contentType, filename, body, contentLength)
}

// write stores the bytes in a temporary file, renames it into place and
// then marks the row complete.
func (m *Media) write(ctx context.Context, id, contentType, filename string, body io.Reader, contentLength int64) error {
	if contentLength > m.MaxBytes {
		return tooLarge()
	}
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	if len(contentType) > 255 || len(filename) > 255 || strings.ContainsAny(filename, "\x00/\\") {
		return httputil.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "bad content type or file name")
	}
	tmp, err := os.CreateTemp(m.dir, "upload-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	n, err := io.Copy(tmp, io.LimitReader(body, m.MaxBytes+1))
	if err != nil {
		tmp.Close()
		return httputil.Errorf(http.StatusBadRequest, "M_UNKNOWN", "reading the upload: "+err.Error())
	}
	if n > m.MaxBytes {
		tmp.Close()
		return tooLarge()
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(m.dir, id)); err != nil {
		return err
	}
	_, err = m.db.ExecContext(ctx, `UPDATE media SET content_type = ?, filename = ?, size = ?, pending = 0 WHERE media_id = ?`, contentType, filename, n, id)
	return err
}

func (m *Media) info(ctx context.Context, mediaID string) (*Info, error) {
	i := &Info{MediaID: mediaID}
	var pending int
	err := m.db.QueryRowContext(ctx, `SELECT user_id, content_type, filename, size, pending FROM media WHERE media_id = ?`, mediaID).
		Scan(&i.UserID, &i.ContentType, &i.Filename, &i.Size, &pending)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, httputil.Errorf(http.StatusNotFound, "M_NOT_FOUND", "unknown media")
	}
	i.Pending = pending != 0
	return i, err
}

// Open returns a stored upload's description and file. Remote media is
// not fetched (no federation client): it is not found.
func (m *Media) Open(ctx context.Context, server, mediaID string) (*Info, *os.File, error) {
	if !ValidID(mediaID) || server == "" || strings.ContainsAny(server, "/\\") {
		return nil, nil, httputil.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "bad server name or media ID")
	}
	if server != m.serverName {
		return nil, nil, httputil.Errorf(http.StatusNotFound, "M_NOT_FOUND", "remote media is not fetched by this server")
	}
	info, err := m.info(ctx, mediaID)
	if err != nil {
		return nil, nil, err
	}
	if info.Pending {
		return nil, nil, httputil.Errorf(http.StatusGatewayTimeout, "M_NOT_YET_UPLOADED", "media not uploaded yet")
	}
	f, err := os.Open(filepath.Join(m.dir, mediaID))
	if err != nil {
		return nil, nil, err
	}
	return info, f, nil
}

// MaxThumbnailSource bounds the pixels of an image the server will decode
// for a thumbnail.
const MaxThumbnailSource = 40_000_000

// Thumbnail returns a JPEG or PNG thumbnail of at least width x height
// (never larger than the image): "scale" keeps the aspect ratio and fits
// the image in the box, "crop" fills the box and cuts the overflow. Images
// smaller than the box come back as they are.
func Thumbnail(r io.ReadSeeker, contentType string, width, height int, method string) ([]byte, string, error) {
	cannot := httputil.Errorf(http.StatusBadRequest, "M_UNKNOWN", "cannot thumbnail this media")
	if contentType != "image/jpeg" && contentType != "image/png" {
		return nil, "", cannot
	}
	cfg, format, err := image.DecodeConfig(r)
	if err != nil || (format != "jpeg" && format != "png") {
		return nil, "", cannot
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > MaxThumbnailSource {
		return nil, "", httputil.Errorf(http.StatusRequestEntityTooLarge, "M_TOO_LARGE", "image too large to thumbnail")
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return nil, "", err
	}
	src, _, err := image.Decode(r)
	if err != nil {
		return nil, "", cannot
	}
	sw, sh := src.Bounds().Dx(), src.Bounds().Dy()
	var dst *image.RGBA
	if method == "crop" {
		tw, th := min(width, sw), min(height, sh)
		// Scale so the image covers tw x th, then take the centre.
		scale := max(float64(tw)/float64(sw), float64(th)/float64(sh))
		cw, ch := int(float64(tw)/scale+0.5), int(float64(th)/scale+0.5)
		cw, ch = min(max(cw, 1), sw), min(max(ch, 1), sh)
		x0, y0 := src.Bounds().Min.X+(sw-cw)/2, src.Bounds().Min.Y+(sh-ch)/2
		dst = image.NewRGBA(image.Rect(0, 0, tw, th))
		draw.CatmullRom.Scale(dst, dst.Bounds(), src, image.Rect(x0, y0, x0+cw, y0+ch), draw.Src, nil)
	} else {
		scale := min(float64(width)/float64(sw), float64(height)/float64(sh), 1)
		tw, th := max(int(float64(sw)*scale+0.5), 1), max(int(float64(sh)*scale+0.5), 1)
		dst = image.NewRGBA(image.Rect(0, 0, tw, th))
		draw.CatmullRom.Scale(dst, dst.Bounds(), src, src.Bounds(), draw.Src, nil)
	}
	var buf bytes.Buffer
	if format == "jpeg" {
		err = jpeg.Encode(&buf, dst, &jpeg.Options{Quality: 85})
		return buf.Bytes(), "image/jpeg", err
	}
	err = png.Encode(&buf, dst)
	return buf.Bytes(), "image/png", err
}

// InlineSafe reports whether a content type may be served inline (the
// spec's list); others are served as attachments.
func InlineSafe(contentType string) bool {
	ct, _, _ := strings.Cut(contentType, ";")
	switch strings.TrimSpace(strings.ToLower(ct)) {
	case "text/css", "text/plain", "text/csv", "application/json", "application/ld+json",
		"image/jpeg", "image/gif", "image/png", "image/apng", "image/webp", "image/avif",
		"video/mp4", "video/webm", "video/ogg", "video/quicktime",
		"audio/mp4", "audio/webm", "audio/aac", "audio/mpeg", "audio/ogg", "audio/wave",
		"audio/wav", "audio/x-wav", "audio/x-pn-wav", "audio/flac", "audio/x-flac":
		return true
	}
	return false
}
