package clientapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/httputil"
	"golang.org/x/image/draw"
)

// Media: uploads are files in the media folder (the data folder's "media"
// by default), named by a random media ID of [A-Za-z0-9]; their type,
// name and uploader are in cs_media. Only this server's media are served
// (no federation). Thumbnails of JPEG and PNG images are made on request
// with golang.org/x/image/draw.

const mediaSchema = `
CREATE TABLE IF NOT EXISTS cs_media (
	media_id TEXT PRIMARY KEY, content_type TEXT NOT NULL, filename TEXT NOT NULL,
	size BIGINT NOT NULL, user_id TEXT NOT NULL, created_ts BIGINT NOT NULL);
`

// DefaultMaxUploadBytes is the upload size limit when none is configured.
const DefaultMaxUploadBytes = 50 << 20

// maxThumbnailPixels bounds the images the server decodes for thumbnails.
const maxThumbnailPixels = 40_000_000

var mediaIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)

// inlineTypes may be shown inline by browsers (the spec's list).
var inlineTypes = map[string]bool{
	"text/css": true, "text/plain": true, "text/csv": true, "application/json": true, "application/ld+json": true,
	"image/jpeg": true, "image/gif": true, "image/png": true, "image/apng": true, "image/webp": true, "image/avif": true,
	"video/mp4": true, "video/webm": true, "video/ogg": true, "video/quicktime": true,
	"audio/mp4": true, "audio/webm": true, "audio/aac": true, "audio/mpeg": true, "audio/ogg": true, "audio/wave": true,
	"audio/wav": true, "audio/x-wav": true, "audio/x-pn-wav": true, "audio/flac": true, "audio/x-flac": true,
}

// mediaRoutes registers the media endpoints: the authenticated ones
// (/_matrix/client/v1/media, spec v1.11) and the older unauthenticated
// downloads under /_matrix/media/v3 (uploads there need a token).
func (a *API) mediaRoutes(mux *http.ServeMux) {
	for _, v := range []string{"v3", "r0", "v1"} {
		p := "/_matrix/media/" + v
		mux.HandleFunc("POST "+p+"/upload", a.wrap(a.authenticate(a.upload)))
		mux.HandleFunc("GET "+p+"/config", a.wrap(a.authenticate(a.mediaConfig)))
		mux.HandleFunc("GET "+p+"/download/{serverName}/{mediaId}", a.wrap(a.download))
		mux.HandleFunc("GET "+p+"/download/{serverName}/{mediaId}/{fileName}", a.wrap(a.download))
		mux.HandleFunc("GET "+p+"/thumbnail/{serverName}/{mediaId}", a.wrap(a.thumbnail))
	}
	p := "/_matrix/client/v1/media"
	mux.HandleFunc("GET "+p+"/config", a.wrap(a.authenticate(a.mediaConfig)))
	mux.HandleFunc("GET "+p+"/download/{serverName}/{mediaId}", a.wrap(a.authenticate(a.downloadAuthed)))
	mux.HandleFunc("GET "+p+"/download/{serverName}/{mediaId}/{fileName}", a.wrap(a.authenticate(a.downloadAuthed)))
	mux.HandleFunc("GET "+p+"/thumbnail/{serverName}/{mediaId}", a.wrap(a.authenticate(a.thumbnailAuthed)))
}

func (a *API) mediaConfig(w http.ResponseWriter, _ *http.Request, _ *device) error {
	httputil.WriteJSON(w, 200, map[string]any{"m.upload.size": a.maxUpload})
	return nil
}

func (a *API) upload(w http.ResponseWriter, r *http.Request, d *device) error {
	u, err := a.receive(w, r)
	if err != nil {
		return err
	}
	defer os.Remove(u.tmp) // a no-op once renamed
	ctype, filename, n := u.contentType, u.filename, u.size
	mediaID := rand.Text()
	if err := os.Rename(u.tmp, filepath.Join(a.mediaDir, mediaID)); err != nil {
		return err
	}
	if _, err := a.db.ExecContext(r.Context(), `INSERT INTO cs_media (media_id, content_type, filename, size, user_id, created_ts) VALUES (?, ?, ?, ?, ?, ?)`,
		mediaID, ctype, filename, n, d.userID, time.Now().UnixMilli()); err != nil {
		os.Remove(filepath.Join(a.mediaDir, mediaID))
		return err
	}
	httputil.WriteJSON(w, 200, map[string]string{"content_uri": "mxc://" + a.serverName + "/" + mediaID})
	return nil
}

type mediaInfo struct {
	id, contentType, filename string
	size                      int64
}

// lookupMedia checks the server name and media ID (refusing anything that
// could name a path outside the media folder) and finds the upload.
func (a *API) lookupMedia(ctx context.Context, serverName, mediaID string) (*mediaInfo, error) {
	if !mediaIDPattern.MatchString(mediaID) {
		return nil, httputil.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "invalid media ID")
	}
	if serverName != a.serverName {
		return nil, httputil.Errorf(http.StatusNotFound, "M_NOT_FOUND", "remote media are not served by this server")
	}
	m := &mediaInfo{id: mediaID}
	err := a.db.QueryRowContext(ctx, `SELECT content_type, filename, size FROM cs_media WHERE media_id = ?`, mediaID).Scan(&m.contentType, &m.filename, &m.size)
	if isNoRows(err) {
		return nil, httputil.Errorf(http.StatusNotFound, "M_NOT_FOUND", "no such media")
	}
	return m, err
}

func mediaHeaders(w http.ResponseWriter, contentType, filename string, inline bool) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	disp := "attachment"
	if inline {
		disp = "inline"
	}
	if filename != "" {
		disp = mime.FormatMediaType(disp, map[string]string{"filename": filename})
	}
	h.Set("Content-Disposition", disp)
	h.Set("Content-Security-Policy", "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; style-src 'unsafe-inline'; object-src 'self';")
	h.Set("Cross-Origin-Resource-Policy", "cross-origin")
}

func (a *API) downloadAuthed(w http.ResponseWriter, r *http.Request, _ *device) error {
	return a.download(w, r)
}

func (a *API) download(w http.ResponseWriter, r *http.Request) error {
	m, err := a.lookupMedia(r.Context(), r.PathValue("serverName"), r.PathValue("mediaId"))
	if err != nil {
		return err
	}
	f, err := os.Open(filepath.Join(a.mediaDir, m.id))
	if err != nil {
		return err
	}
	defer f.Close()
	name := m.filename
	if fn := r.PathValue("fileName"); fn != "" {
		name = fn
	}
	base, _, _ := mime.ParseMediaType(m.contentType)
	mediaHeaders(w, m.contentType, name, inlineTypes[base])
	w.Header().Set("Content-Length", strconv.FormatInt(m.size, 10))
	w.WriteHeader(200)
	_, _ = io.Copy(w, f)
	return nil
}

func (a *API) thumbnailAuthed(w http.ResponseWriter, r *http.Request, _ *device) error {
	return a.thumbnail(w, r)
}

// thumbnail scales (keeping the aspect) or crops (to the requested aspect)
// a JPEG or PNG image to at least the requested size, never upscaling; an
// image already small enough is returned as it is.
func (a *API) thumbnail(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	width, err1 := strconv.Atoi(q.Get("width"))
	height, err2 := strconv.Atoi(q.Get("height"))
	if err1 != nil || err2 != nil || width <= 0 || height <= 0 || width > 4096 || height > 4096 {
		return httputil.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "width and height must be integers from 1 to 4096")
	}
	method := q.Get("method")
	if method == "" {
		method = "scale"
	}
	if method != "scale" && method != "crop" {
		return httputil.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "method must be crop or scale")
	}
	m, err := a.lookupMedia(r.Context(), r.PathValue("serverName"), r.PathValue("mediaId"))
	if err != nil {
		return err
	}
	cannot := httputil.Errorf(http.StatusBadRequest, "M_UNKNOWN", "cannot make a thumbnail of this media")
	raw, err := os.ReadFile(filepath.Join(a.mediaDir, m.id))
	if err != nil {
		return err
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(raw))
	if err != nil || (format != "jpeg" && format != "png") {
		return cannot
	}
	if int64(cfg.Width)*int64(cfg.Height) > maxThumbnailPixels {
		return httputil.Errorf(http.StatusRequestEntityTooLarge, "M_TOO_LARGE", "image too large to thumbnail")
	}
	ctype := "image/" + format
	if cfg.Width <= width && cfg.Height <= height {
		mediaHeaders(w, ctype, m.filename, true)
		w.WriteHeader(200)
		_, _ = w.Write(raw)
		return nil
	}
	src, _, err := image.Decode(bytes.NewReader(raw))
	if err != nil {
		return cannot
	}
	dst := resize(src, width, height, method == "crop")
	var out bytes.Buffer
	if format == "png" {
		err = png.Encode(&out, dst)
	} else {
		err = jpeg.Encode(&out, dst, &jpeg.Options{Quality: 85})
	}
	if err != nil {
		return err
	}
	mediaHeaders(w, ctype, m.filename, true)
	w.WriteHeader(200)
	_, _ = w.Write(out.Bytes())
	return nil
}

// resize scales src to fit within w x h (keeping its aspect), or with
// crop to cover w x h and cuts the middle out.
func resize(src image.Image, w, h int, crop bool) image.Image {
	sb := src.Bounds()
	sw, sh := sb.Dx(), sb.Dy()
	if !crop {
		scale := min(float64(w)/float64(sw), float64(h)/float64(sh), 1)
		tw, th := max(int(float64(sw)*scale), 1), max(int(float64(sh)*scale), 1)
		dst := image.NewRGBA(image.Rect(0, 0, tw, th))
		draw.CatmullRom.Scale(dst, dst.Bounds(), src, sb, draw.Src, nil)
		return dst
	}
	// The source region with the requested aspect, centred.
	rw, rh := sw, sw*h/w
	if rh > sh {
		rw, rh = sh*w/h, sh
	}
	x0, y0 := sb.Min.X+(sw-rw)/2, sb.Min.Y+(sh-rh)/2
	region := image.Rect(x0, y0, x0+rw, y0+rh)
	tw, th := min(w, rw), min(h, rh)
	dst := image.NewRGBA(image.Rect(0, 0, tw, th))
	draw.CatmullRom.Scale(dst, dst.Bounds(), src, region, draw.Src, nil)
	return dst
}

// received is an upload read into a temporary file of the media folder;
// the caller renames tmp into place or removes it.
type received struct {
	tmp, contentType, filename string
	size                       int64
}

// receive checks an upload's headers and reads its body into a temporary
// file, refusing one over the size limit before and while reading it.
func (a *API) receive(w http.ResponseWriter, r *http.Request) (*received, error) {
	tooLarge := httputil.Errorf(http.StatusRequestEntityTooLarge, "M_TOO_LARGE", fmt.Sprintf("uploads are limited to %d bytes", a.maxUpload))
	if r.ContentLength > a.maxUpload {
		return nil, tooLarge
	}
	u := &received{contentType: r.Header.Get("Content-Type"), filename: r.URL.Query().Get("filename")}
	if u.contentType == "" {
		u.contentType = "application/octet-stream"
	}
	if _, _, err := mime.ParseMediaType(u.contentType); err != nil || len(u.contentType) > 255 {
		return nil, httputil.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "bad Content-Type")
	}
	if len(u.filename) > 255 || strings.ContainsAny(u.filename, "/\\\x00") {
		return nil, httputil.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "bad file name")
	}
	if err := os.MkdirAll(a.mediaDir, 0o700); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(a.mediaDir, ".upload-*")
	if err != nil {
		return nil, err
	}
	u.tmp = tmp.Name()
	u.size, err = io.Copy(tmp, http.MaxBytesReader(w, r.Body, a.maxUpload))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(u.tmp)
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge
		}
		return nil, httputil.Errorf(http.StatusBadRequest, "M_UNKNOWN", "could not read the upload")
	}
	return u, nil
}
