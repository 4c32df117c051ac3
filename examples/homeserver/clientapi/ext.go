package clientapi

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/httputil"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/keyserver"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/mediaapi"
)

// This file wires the second half of issue #21's client features (devices,
// end-to-end keys, push rules, the room and user directories, media,
// registration modes and rate limits) into the API with as few edits to
// the shared files as possible: Extend prepares their tables, and
// addRoutes adds (or wraps) routes in Handler's maps.

// ExtOptions configure the features Extend adds.
type ExtOptions struct {
	// DataDir holds the media files (in DataDir/media).
	DataDir string
	// MaxUploadBytes bounds a media upload; zero means 50 MiB.
	MaxUploadBytes int64
	// Registration is "open" (m.login.dummy), "token"
	// (m.login.registration_token) or "closed". Empty: "open" while the
	// client API listens on a loopback address (ClientAddr), else "token".
	Registration string
	// ClientAddr is the client API listen address, for the default above.
	ClientAddr string
	// RegistrationTokens are accepted for token registration (each usable
	// without limit); more can be created with CreateRegistrationToken.
	RegistrationTokens []string
	// RateLimit, when positive, is the sustained number of login,
	// registration and send requests per second allowed per client
	// address and per user, with bursts of RateBurst.
	RateLimit float64
	RateBurst int
}

type ext struct {
	opts    ExtOptions
	keys    *keyserver.KeyServer
	media   *mediaapi.Media
	uia     *uiaSessions
	limits  *limiters
	regMode string

	seenMu sync.Mutex
	seen   map[[2]string]lastSeen
}

type lastSeen struct {
	ip string
	ts int64
}

// Extend prepares the devices, keys, push rules, directory, media and
// registration features; call it once after New, before Handler.
func (a *API) Extend(opts ExtOptions) error {
	e := &ext{opts: opts, seen: map[[2]string]lastSeen{}, uia: newUIASessions()}
	var err error
	if e.keys, err = keyserver.New(a.db); err != nil {
		return err
	}
	if opts.MaxUploadBytes <= 0 {
		opts.MaxUploadBytes = 50 << 20
	}
	if e.media, err = mediaapi.New(a.db, opts.DataDir, a.serverName, opts.MaxUploadBytes); err != nil {
		return err
	}
	if _, err := a.db.Exec(extSchema); err != nil {
		return fmt.Errorf("clientapi: schema: %w", err)
	}
	e.regMode = opts.Registration
	if e.regMode == "" {
		e.regMode = "token"
		if host, _, err := net.SplitHostPort(opts.ClientAddr); err == nil {
			if ip := net.ParseIP(host); (ip != nil && ip.IsLoopback()) || host == "localhost" {
				e.regMode = "open"
			}
		}
	}
	switch e.regMode {
	case "open", "token", "closed":
	default:
		return fmt.Errorf("clientapi: registration mode %q: want open, token or closed", e.regMode)
	}
	for _, t := range opts.RegistrationTokens {
		if err := a.createRegistrationToken(context.Background(), t); err != nil {
			return err
		}
	}
	e.limits = newLimiters(opts.RateLimit, opts.RateBurst)
	a.ext = e
	return nil
}

// RegistrationMode returns the registration mode in force.
func (a *API) RegistrationMode() string {
	if a.ext == nil {
		return "open"
	}
	return a.ext.regMode
}

const extSchema = `
CREATE TABLE IF NOT EXISTS cs_device_info (
	user_id TEXT NOT NULL, device_id TEXT NOT NULL, display_name TEXT NOT NULL,
	PRIMARY KEY (user_id, device_id));
CREATE TABLE IF NOT EXISTS cs_push_rules (
	user_id TEXT NOT NULL, kind TEXT NOT NULL, rule_id TEXT NOT NULL, priority BIGINT NOT NULL,
	rule_json TEXT NOT NULL, PRIMARY KEY (user_id, kind, rule_id));
CREATE TABLE IF NOT EXISTS cs_push_defaults (
	user_id TEXT NOT NULL, rule_id TEXT NOT NULL, enabled INTEGER, actions TEXT,
	PRIMARY KEY (user_id, rule_id));
CREATE TABLE IF NOT EXISTS cs_aliases (
	alias TEXT PRIMARY KEY, room_id TEXT NOT NULL, creator TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS cs_aliases_room ON cs_aliases(room_id);
CREATE TABLE IF NOT EXISTS cs_room_visibility (
	room_id TEXT PRIMARY KEY, visibility TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cs_registration_tokens (
	token TEXT PRIMARY KEY);
`

type openHandler = func(http.ResponseWriter, *http.Request) error
type authedHandler = func(http.ResponseWriter, *http.Request, *device) error

// addRoutes adds this file's routes to Handler's maps and mux, and wraps
// a few of the existing ones (sync and messages for the device list
// stream, createRoom for the directory, sends and login for rate limits).
func (a *API) addRoutes(mux *http.ServeMux, open map[string]openHandler, authed map[string]authedHandler) {
	e := a.ext
	if e == nil {
		return
	}
	for k, h := range map[string]authedHandler{
		"GET /devices":                                  a.getDevices,
		"GET /devices/{deviceId}":                       a.getDevice,
		"PUT /devices/{deviceId}":                       a.putDevice,
		"DELETE /devices/{deviceId}":                    a.deleteDevice,
		"POST /delete_devices":                          a.deleteDevices,
		"POST /keys/upload":                             a.keysUpload,
		"POST /keys/query":                              a.keysQuery,
		"POST /keys/claim":                              a.keysClaim,
		"GET /keys/changes":                             a.keysChanges,
		"GET /room_keys/version":                        a.noKeyBackup,
		"GET /room_keys/version/{version}":              a.noKeyBackup,
		"GET /pushrules/":                               a.getPushRules,
		"GET /pushrules/global/":                        a.getPushRules,
		"GET /pushrules/global/{kind}/{ruleId}":         a.getPushRule,
		"PUT /pushrules/global/{kind}/{ruleId}":         a.putPushRule,
		"DELETE /pushrules/global/{kind}/{ruleId}":      a.deletePushRule,
		"GET /pushrules/global/{kind}/{ruleId}/enabled": a.pushRuleAttr("enabled"),
		"PUT /pushrules/global/{kind}/{ruleId}/enabled": a.putPushRuleAttr("enabled"),
		"GET /pushrules/global/{kind}/{ruleId}/actions": a.pushRuleAttr("actions"),
		"PUT /pushrules/global/{kind}/{ruleId}/actions": a.putPushRuleAttr("actions"),
		"PUT /directory/room/{roomAlias}":               a.putAlias,
		"DELETE /directory/room/{roomAlias}":            a.deleteAlias,
		"GET /rooms/{roomId}/aliases":                   a.roomAliases,
		"PUT /directory/list/room/{roomId}":             a.putVisibility,
		"POST /publicRooms":                             a.postPublicRooms,
		"POST /user_directory/search":                   a.searchUsers,
		"GET /voip/turnServer":                          a.turnServer,
		"GET /thirdparty/protocols":                     a.thirdPartyProtocols,
	} {
		authed[k] = h
	}
	for k, h := range map[string]openHandler{
		"GET /directory/room/{roomAlias}":   a.getAlias,
		"GET /directory/list/room/{roomId}": a.getVisibility,
		"GET /publicRooms":                  a.getPublicRooms,
	} {
		open[k] = h
	}
	// Wrapped routes.
	if h, ok := authed["GET /sync"]; ok {
		authed["GET /sync"] = a.syncWithKeys(h)
	}
	if h, ok := authed["GET /rooms/{roomId}/messages"]; ok {
		authed["GET /rooms/{roomId}/messages"] = a.stripKeyPos(h)
	}
	if h, ok := authed["POST /createRoom"]; ok {
		authed["POST /createRoom"] = a.createRoomDirectory(h)
	}
	for _, k := range []string{"PUT /rooms/{roomId}/state/{eventType}", "PUT /rooms/{roomId}/state/{eventType}/{stateKey}", "PUT /rooms/{roomId}/state/{eventType}/{stateKey...}"} {
		if h, ok := authed[k]; ok {
			authed[k] = a.checkCanonicalAlias(h)
		}
	}
	for _, k := range []string{"PUT /rooms/{roomId}/send/{eventType}/{txnId}", "PUT /rooms/{roomId}/redact/{eventId}/{txnId}"} {
		if h, ok := authed[k]; ok {
			authed[k] = a.limitUser(h)
		}
	}
	if h, ok := open["POST /login"]; ok {
		open["POST /login"] = a.limitAddr(h)
	}
	if h, ok := open["POST /register"]; ok {
		open["POST /register"] = a.limitAddr(a.registrationGate(h))
	}
	open["GET /register/m.login.registration_token/validity"] = a.limitAddr(a.tokenValidity)
	for k, h := range authed {
		authed[k] = a.noteLastSeen(h)
	}
	// The authenticated media endpoints (v1.11), the v1 token validity
	// check and the legacy media API.
	v1 := func(h authedHandler) http.HandlerFunc { return wrap(a.authenticate(a.noteLastSeen(h))) }
	mux.HandleFunc("GET /_matrix/client/v1/register/m.login.registration_token/validity", wrap(a.limitAddr(a.tokenValidity)))
	mux.HandleFunc("GET /_matrix/client/v1/media/config", v1(a.mediaConfig))
	mux.HandleFunc("GET /_matrix/client/v1/media/download/{serverName}/{mediaId}", v1(a.mediaDownload))
	mux.HandleFunc("GET /_matrix/client/v1/media/download/{serverName}/{mediaId}/{fileName}", v1(a.mediaDownload))
	mux.HandleFunc("GET /_matrix/client/v1/media/thumbnail/{serverName}/{mediaId}", v1(a.mediaThumbnail))
	for _, p := range []string{"/_matrix/media/v3", "/_matrix/media/r0"} {
		mux.HandleFunc("POST "+p+"/upload", v1(a.limitUser(a.mediaUpload)))
		mux.HandleFunc("PUT "+p+"/upload/{serverName}/{mediaId}", v1(a.limitUser(a.mediaUploadTo)))
		mux.HandleFunc("GET "+p+"/config", v1(a.mediaConfig))
		mux.HandleFunc("GET "+p+"/download/{serverName}/{mediaId}", wrap(a.openMedia(a.mediaDownload)))
		mux.HandleFunc("GET "+p+"/download/{serverName}/{mediaId}/{fileName}", wrap(a.openMedia(a.mediaDownload)))
		mux.HandleFunc("GET "+p+"/thumbnail/{serverName}/{mediaId}", wrap(a.openMedia(a.mediaThumbnail)))
	}
	mux.HandleFunc("POST /_matrix/media/v1/create", v1(a.limitUser(a.mediaCreate)))
}

// openMedia serves the legacy unauthenticated media downloads.
func (a *API) openMedia(h authedHandler) openHandler {
	return func(w http.ResponseWriter, r *http.Request) error { return h(w, r, nil) }
}

// noteLastSeen remembers the address and time of each device's latest
// request (in memory: /devices shows them since the server started).
func (a *API) noteLastSeen(h authedHandler) authedHandler {
	return func(w http.ResponseWriter, r *http.Request, d *device) error {
		ip := r.RemoteAddr
		if host, _, err := net.SplitHostPort(ip); err == nil {
			ip = host
		}
		a.ext.seenMu.Lock()
		a.ext.seen[[2]string{d.userID, d.deviceID}] = lastSeen{ip: ip, ts: time.Now().UnixMilli()}
		a.ext.seenMu.Unlock()
		return h(w, r, d)
	}
}

// recorder keeps a wrapped handler's response for the wrapper to amend.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func newRecorder() *recorder { return &recorder{header: http.Header{}, status: 200} }

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(s int)           { r.status = s }

func (r *recorder) flush(w http.ResponseWriter, body []byte) {
	for k, v := range r.header {
		w.Header()[k] = v
	}
	w.WriteHeader(r.status)
	_, _ = w.Write(body)
}

// readBodyAgain reads a bounded request body and puts it back for the
// wrapped handler.
func readBodyAgain(r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, httputil.MaxBodyBytes))
	if err != nil {
		return nil, httputil.Errorf(http.StatusRequestEntityTooLarge, "M_TOO_LARGE", "request body too large")
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return body, nil
}

func notFound(msg string) error { return httputil.Errorf(http.StatusNotFound, "M_NOT_FOUND", msg) }

func forbidden(msg string) error { return httputil.Errorf(http.StatusForbidden, "M_FORBIDDEN", msg) }

func invalidParam(msg string) error {
	return httputil.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", msg)
}
