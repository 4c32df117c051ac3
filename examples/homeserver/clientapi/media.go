package clientapi

import (
	"bytes"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/httputil"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/mediaapi"
)

// The media endpoints: uploads on /_matrix/media/v3, downloads and
// thumbnails on the authenticated /_matrix/client/v1/media and the legacy
// /_matrix/media/v3.

func (a *API) mediaConfig(w http.ResponseWriter, _ *http.Request, _ *device) error {
	httputil.WriteJSON(w, 200, map[string]any{"m.upload.size": a.ext.media.MaxBytes})
	return nil
}

func uploadMeta(r *http.Request) (string, string) {
	ct := r.Header.Get("Content-Type")
	if ct != "" {
		if _, _, err := mime.ParseMediaType(ct); err != nil {
			ct = "application/octet-stream"
		}
	}
	return ct, r.URL.Query().Get("filename")
}

func (a *API) mediaUpload(w http.ResponseWriter, r *http.Request, d *device) error {
	ct, name := uploadMeta(r)
	id, err := a.ext.media.Upload(r.Context(), d.userID, ct, name, r.Body, r.ContentLength)
	if err != nil {
		return err
	}
	httputil.WriteJSON(w, 200, map[string]string{"content_uri": a.ext.media.URI(id)})
	return nil
}

func (a *API) mediaCreate(w http.ResponseWriter, r *http.Request, d *device) error {
	id, err := a.ext.media.Create(r.Context(), d.userID)
	if err != nil {
		return err
	}
	httputil.WriteJSON(w, 200, map[string]any{"content_uri": a.ext.media.URI(id), "unused_expires_at": time.Now().Add(24 * time.Hour).UnixMilli()})
	return nil
}

func (a *API) mediaUploadTo(w http.ResponseWriter, r *http.Request, d *device) error {
	ct, name := uploadMeta(r)
	if err := a.ext.media.UploadTo(r.Context(), d.userID, r.PathValue("serverName"), r.PathValue("mediaId"), ct, name, r.Body, r.ContentLength); err != nil {
		return err
	}
	httputil.WriteJSON(w, 200, map[string]any{})
	return nil
}

func mediaHeaders(w http.ResponseWriter, contentType, disposition, filename string) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	if filename != "" {
		disposition = mime.FormatMediaType(disposition, map[string]string{"filename": filename})
		if disposition == "" {
			disposition = "attachment"
		}
	}
	h.Set("Content-Disposition", disposition)
	h.Set("Content-Security-Policy", "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; style-src 'unsafe-inline'; object-src 'self';")
	h.Set("Cross-Origin-Resource-Policy", "cross-origin")
}

func (a *API) mediaDownload(w http.ResponseWriter, r *http.Request, _ *device) error {
	info, f, err := a.ext.media.Open(r.Context(), r.PathValue("serverName"), r.PathValue("mediaId"))
	if err != nil {
		return err
	}
	defer f.Close()
	name := info.Filename
	if n := r.PathValue("fileName"); n != "" {
		name = n
	}
	disposition := "attachment"
	if mediaapi.InlineSafe(info.ContentType) {
		disposition = "inline"
	}
	mediaHeaders(w, info.ContentType, disposition, name)
	w.Header().Set("Content-Length", strconv.FormatInt(info.Size, 10))
	w.WriteHeader(200)
	_, _ = io.Copy(w, f)
	return nil
}

func (a *API) mediaThumbnail(w http.ResponseWriter, r *http.Request, _ *device) error {
	q := r.URL.Query()
	width, err1 := strconv.Atoi(q.Get("width"))
	height, err2 := strconv.Atoi(q.Get("height"))
	if err1 != nil || err2 != nil || width <= 0 || height <= 0 || width > 4096 || height > 4096 {
		return invalidParam("width and height must be integers from 1 to 4096")
	}
	method := q.Get("method")
	if method == "" {
		method = "scale"
	}
	if method != "scale" && method != "crop" {
		return invalidParam("method must be scale or crop")
	}
	info, f, err := a.ext.media.Open(r.Context(), r.PathValue("serverName"), r.PathValue("mediaId"))
	if err != nil {
		return err
	}
	defer f.Close()
	thumb, ct, err := mediaapi.Thumbnail(f, info.ContentType, width, height, method)
	if err != nil {
		return err
	}
	mediaHeaders(w, ct, "inline", info.Filename)
	w.Header().Set("Content-Length", strconv.Itoa(len(thumb)))
	w.WriteHeader(200)
	_, _ = io.Copy(w, bytes.NewReader(thumb))
	return nil
}
