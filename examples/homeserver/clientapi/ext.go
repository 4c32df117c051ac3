package clientapi

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/httputil"
)

// This file wires the push rule changes, the room and user directories,
// registration modes and rate limits into the API with as few edits to
// the shared files as possible: Extend prepares their tables, and
// addRoutes adds (or wraps) routes in Handler's maps.

// ExtOptions configure the features Extend adds.
type ExtOptions struct {
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
	limits  *limiters
	regMode string
}

// Extend prepares the push rule, directory and registration features;
// call it once after New, before Handler.
func (a *API) Extend(opts ExtOptions) error {
	if _, err := a.db.Exec(extSchema); err != nil {
		return fmt.Errorf("clientapi: schema: %w", err)
	}
	if err := a.hashStoredTokens(context.Background()); err != nil {
		return fmt.Errorf("clientapi: hashing stored access tokens: %w", err)
	}
	e := &ext{regMode: opts.Registration, limits: newLimiters(opts.RateLimit, opts.RateBurst)}
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
// a few of the existing ones (createRoom and the state PUT for the
// directory, register for the registration mode, login, register and the
// sends for rate limits).
func (a *API) addRoutes(mux *http.ServeMux, open map[string]openHandler, authed map[string]authedHandler) {
	if a.ext == nil {
		return
	}
	for k, h := range map[string]authedHandler{
		// GET replaces the defaults-only answer: user rules are served too.
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
	if h, ok := authed["POST /join/{roomId}"]; ok {
		authed["POST /join/{roomId}"] = a.joinByAlias(h)
	}
	if h, ok := open["POST /login"]; ok {
		open["POST /login"] = a.limitAddr(a.limitLoginUser(h))
	}
	if h, ok := open["POST /register"]; ok {
		open["POST /register"] = a.limitAddr(a.registrationGate(h))
	}
	open["GET /register/m.login.registration_token/validity"] = a.limitAddr(a.tokenValidity)
	mux.HandleFunc("GET /_matrix/client/v1/register/m.login.registration_token/validity", wrap(a.limitAddr(a.tokenValidity)))
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
