package clientapi

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/httputil"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/syncapi"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
)

// specVersions are the client-server spec versions whose required parts
// clients use from this server. v1.1 to v1.11 are listed because
// matrix-js-sdk and matrix-nio key features on them; what the server
// leaves out of them is listed in the README.
var specVersions = []string{"r0.5.0", "r0.6.0", "r0.6.1", "v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6", "v1.7", "v1.8", "v1.9", "v1.10", "v1.11"}

func (a *API) versions(w http.ResponseWriter, _ *http.Request) {
	httputil.WriteJSON(w, 200, map[string]any{"versions": specVersions, "unstable_features": map[string]bool{}})
}

// wellKnown answers client discovery with the address the request came to
// (this server's client API).
func (a *API) wellKnown(w http.ResponseWriter, r *http.Request) {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	httputil.WriteJSON(w, 200, map[string]any{"m.homeserver": map[string]string{"base_url": scheme + "://" + r.Host}})
}

func (a *API) capabilities(w http.ResponseWriter, _ *http.Request, _ *device) error {
	available := map[string]string{}
	for _, v := range roomversion.Stable() {
		available[v] = "stable"
	}
	httputil.WriteJSON(w, 200, map[string]any{"capabilities": map[string]any{
		"m.room_versions":   map[string]any{"default": roomversion.Default, "available": available},
		"m.change_password": map[string]bool{"enabled": false},
		"m.set_displayname": map[string]bool{"enabled": true},
		"m.set_avatar_url":  map[string]bool{"enabled": false},
		"m.3pid_changes":    map[string]bool{"enabled": false},
		"m.get_login_token": map[string]bool{"enabled": false},
		"m.profile_fields":  map[string]any{"enabled": true, "allowed": []string{"displayname"}},
	}})
	return nil
}

// turnServer: this server has no TURN server configured.
func (a *API) turnServer(w http.ResponseWriter, _ *http.Request, _ *device) error {
	httputil.WriteJSON(w, 200, map[string]any{})
	return nil
}

// thirdpartyProtocols: no bridges, so no protocols.
func (a *API) thirdpartyProtocols(w http.ResponseWriter, _ *http.Request, _ *device) error {
	httputil.WriteJSON(w, 200, map[string]any{})
	return nil
}

// roomKeysVersion: key backup is not implemented, so there is never a
// backup version.
func (a *API) roomKeysVersion(_ http.ResponseWriter, _ *http.Request, _ *device) error {
	return httputil.Errorf(http.StatusNotFound, "M_NOT_FOUND", "No current backup version")
}

// members answers /rooms/{roomId}/members with the room's current member
// events (the at and membership filters of the spec narrow them).
func (a *API) members(w http.ResponseWriter, r *http.Request, d *device) error {
	roomID := r.PathValue("roomId")
	m, err := a.membership(roomID, d.userID)
	if err != nil {
		return err
	}
	if m != "join" {
		return httputil.Errorf(http.StatusForbidden, "M_FORBIDDEN", "you are not joined to this room")
	}
	state, err := a.rs.CurrentState(roomID)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	var stored []json.RawMessage
	for k, p := range state {
		if k.Type != "m.room.member" {
			continue
		}
		ms := p.Membership()
		if want := q.Get("membership"); want != "" && ms != want {
			continue
		}
		if not := q.Get("not_membership"); not != "" && ms == not {
			continue
		}
		evs, err := a.sync.ClientEvents(r.Context(), roomID, []syncapi.Stored{{ID: p.EventID(), JSON: p.JSON()}})
		if err != nil {
			return err
		}
		stored = append(stored, evs...)
	}
	if stored == nil {
		stored = []json.RawMessage{}
	}
	httputil.WriteJSON(w, 200, map[string]any{"chunk": stored})
	return nil
}

// pushRules answers GET /pushrules/ and /pushrules/global/ with the spec's
// default rule set for the user. User-defined rules are not stored.
func (a *API) pushRules(w http.ResponseWriter, r *http.Request, d *device) error {
	rules := defaultPushRules(d.userID)
	if strings.HasSuffix(r.URL.Path, "/global/") {
		httputil.WriteJSON(w, 200, rules)
		return nil
	}
	httputil.WriteJSON(w, 200, map[string]any{"global": rules})
	return nil
}

func defaultPushRules(userID string) map[string]any {
	localpart := strings.TrimPrefix(userID, "@")
	localpart, _, _ = strings.Cut(localpart, ":")
	em := func(key, pattern string) map[string]any {
		return map[string]any{"kind": "event_match", "key": key, "pattern": pattern}
	}
	is := func(key string, value any) map[string]any {
		return map[string]any{"kind": "event_property_is", "key": key, "value": value}
	}
	notify, highlight := "notify", map[string]any{"set_tweak": "highlight"}
	sound := func(v string) map[string]any { return map[string]any{"set_tweak": "sound", "value": v} }
	rule := func(id string, enabled bool, conditions []any, actions ...any) map[string]any {
		if actions == nil {
			actions = []any{}
		}
		r := map[string]any{"rule_id": id, "default": true, "enabled": enabled, "actions": actions}
		if conditions != nil {
			r["conditions"] = conditions
		}
		return r
	}
	roomNotif := map[string]any{"kind": "sender_notification_permission", "key": "room"}
	override := []any{
		rule(".m.rule.master", false, []any{}),
		rule(".m.rule.suppress_notices", true, []any{em("content.msgtype", "m.notice")}),
		rule(".m.rule.invite_for_me", true, []any{em("type", "m.room.member"), em("content.membership", "invite"), em("state_key", userID)}, notify, sound("default")),
		rule(".m.rule.member_event", true, []any{em("type", "m.room.member")}),
		rule(".m.rule.is_user_mention", true, []any{map[string]any{"kind": "event_property_contains", "key": `content.m\.mentions.user_ids`, "value": userID}}, notify, sound("default"), highlight),
		rule(".m.rule.contains_display_name", true, []any{map[string]any{"kind": "contains_display_name"}}, notify, sound("default"), highlight),
		rule(".m.rule.is_room_mention", true, []any{is(`content.m\.mentions.room`, true), roomNotif}, notify, highlight),
		rule(".m.rule.roomnotif", true, []any{em("content.body", "@room"), roomNotif}, notify, highlight),
		rule(".m.rule.tombstone", true, []any{em("type", "m.room.tombstone"), em("state_key", "")}, notify, highlight),
		rule(".m.rule.reaction", true, []any{em("type", "m.reaction")}),
		rule(".m.rule.room.server_acl", true, []any{em("type", "m.room.server_acl"), em("state_key", "")}),
		rule(".m.rule.suppress_edits", true, []any{is(`content.m\.relates_to.rel_type`, "m.replace")}),
	}
	content := []any{map[string]any{"rule_id": ".m.rule.contains_user_name", "default": true, "enabled": true, "pattern": localpart,
		"actions": []any{notify, sound("default"), highlight}}}
	memberCount := map[string]any{"kind": "room_member_count", "is": "2"}
	underride := []any{
		rule(".m.rule.call", true, []any{em("type", "m.call.invite")}, notify, sound("ring")),
		rule(".m.rule.encrypted_room_one_to_one", true, []any{memberCount, em("type", "m.room.encrypted")}, notify, sound("default")),
		rule(".m.rule.room_one_to_one", true, []any{memberCount, em("type", "m.room.message")}, notify, sound("default")),
		rule(".m.rule.message", true, []any{em("type", "m.room.message")}, notify),
		rule(".m.rule.encrypted", true, []any{em("type", "m.room.encrypted")}, notify),
	}
	return map[string]any{"override": override, "content": content, "room": []any{}, "sender": []any{}, "underride": underride}
}
