package clientapi

import (
	"fmt"
	"net/http"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/httputil"
)

// This file wires the push rule changes (pushrules.go) and the canonical
// alias check (canonical_alias.go) into the API with
// as few edits to the shared files as possible: Extend prepares their
// tables, and addRoutes adds their routes to Handler's maps.

// Extend prepares the push rule tables; call it once after New, before
// Handler.
func (a *API) Extend() error {
	if _, err := a.db.Exec(extSchema + mediaPendingSchema); err != nil {
		return fmt.Errorf("clientapi: schema: %w", err)
	}
	a.ext = &ext{}
	return nil
}

type ext struct{}

const extSchema = `
CREATE TABLE IF NOT EXISTS cs_push_rules (
	user_id TEXT NOT NULL, kind TEXT NOT NULL, rule_id TEXT NOT NULL, priority BIGINT NOT NULL,
	rule_json TEXT NOT NULL, PRIMARY KEY (user_id, kind, rule_id));
CREATE TABLE IF NOT EXISTS cs_push_defaults (
	user_id TEXT NOT NULL, rule_id TEXT NOT NULL, enabled INTEGER, actions TEXT,
	PRIMARY KEY (user_id, rule_id));
`

type authedHandler = func(http.ResponseWriter, *http.Request, *device) error

// addRoutes adds the push rule routes to Handler's maps, wraps the state
// PUT with the canonical alias check (canonical_alias.go) and adds the
// asynchronous upload routes to the mux (media_create.go).
func (a *API) addRoutes(mux *http.ServeMux, _ map[string]func(http.ResponseWriter, *http.Request) error, authed map[string]authedHandler) {
	if a.ext == nil {
		return
	}
	for k, h := range map[string]authedHandler{
		// GET replaces the defaults-only answer: user rules and the
		// user's changes to default rules are served too.
		"GET /pushrules/":                               a.getPushRules,
		"GET /pushrules/global/":                        a.getPushRules,
		"GET /pushrules/global/{kind}/{ruleId}":         a.getPushRule,
		"PUT /pushrules/global/{kind}/{ruleId}":         a.putPushRule,
		"DELETE /pushrules/global/{kind}/{ruleId}":      a.deletePushRule,
		"GET /pushrules/global/{kind}/{ruleId}/enabled": a.pushRuleAttr("enabled"),
		"PUT /pushrules/global/{kind}/{ruleId}/enabled": a.putPushRuleAttr("enabled"),
		"GET /pushrules/global/{kind}/{ruleId}/actions": a.pushRuleAttr("actions"),
		"PUT /pushrules/global/{kind}/{ruleId}/actions": a.putPushRuleAttr("actions"),
	} {
		authed[k] = h
	}
	// Asynchronous uploads (media_create.go).
	mux.HandleFunc("POST /_matrix/media/v1/create", a.wrap(a.authenticate(a.mediaCreate)))
	for _, v := range []string{"v3", "r0"} {
		mux.HandleFunc("PUT /_matrix/media/"+v+"/upload/{serverName}/{mediaId}", a.wrap(a.authenticate(a.mediaUploadTo)))
	}
	for _, k := range []string{"PUT /rooms/{roomId}/state/{eventType}", "PUT /rooms/{roomId}/state/{eventType}/{stateKey...}"} {
		if h, ok := authed[k]; ok {
			authed[k] = a.checkCanonicalAlias(h)
		}
	}
}

func notFound(msg string) error { return httputil.Errorf(http.StatusNotFound, "M_NOT_FOUND", msg) }

func forbidden(msg string) error { return httputil.Errorf(http.StatusForbidden, "M_FORBIDDEN", msg) }
