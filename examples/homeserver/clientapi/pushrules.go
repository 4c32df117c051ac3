package clientapi

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/httputil"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/logs"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/syncapi"
	"github.com/gomatrixlib/gomatrixlib/id"
)

// Push rules: the spec's server-default rule set (v1.16, "Predefined
// rules") with per-user enabled/actions changes, and user rules per kind
// in priority order. Rules are stored and served; the server does not
// evaluate them (there are no pushers and no notification counts from
// them).

var pushKinds = []string{"override", "content", "room", "sender", "underride"}

type pushRule struct {
	RuleID     string             `json:"rule_id"`
	Default    bool               `json:"default"`
	Enabled    bool               `json:"enabled"`
	Actions    []json.RawMessage  `json:"actions"`
	Conditions *[]json.RawMessage `json:"conditions,omitempty"`
	Pattern    *string            `json:"pattern,omitempty"`
}

func cond(s string) json.RawMessage { return json.RawMessage(s) }

func em(key, pattern string) json.RawMessage {
	b, _ := json.Marshal(map[string]string{"kind": "event_match", "key": key, "pattern": pattern})
	return b
}

// Actions used by the default rules.
var (
	aNotify    = json.RawMessage(`"notify"`)
	aSound     = json.RawMessage(`{"set_tweak":"sound","value":"default"}`)
	aRing      = json.RawMessage(`{"set_tweak":"sound","value":"ring"}`)
	aHighlight = json.RawMessage(`{"set_tweak":"highlight"}`)
)

func actions(a ...json.RawMessage) []json.RawMessage {
	if a == nil {
		return []json.RawMessage{}
	}
	return a
}

// defaultPushRules returns the server-default rules of each kind for the
// user, in the spec's order.
func defaultRuleset(userID string) map[string][]pushRule {
	localpart := strings.TrimPrefix(userID, "@")
	if i := strings.IndexByte(localpart, ':'); i >= 0 {
		localpart = localpart[:i]
	}
	me, _ := json.Marshal(userID)
	rule := func(id string, acts []json.RawMessage, conds ...json.RawMessage) pushRule {
		if conds == nil {
			conds = []json.RawMessage{}
		}
		return pushRule{RuleID: id, Default: true, Enabled: true, Actions: acts, Conditions: &conds}
	}
	master := rule(".m.rule.master", actions())
	master.Enabled = false
	senderPerm := cond(`{"kind":"sender_notification_permission","key":"room"}`)
	override := []pushRule{
		master,
		rule(".m.rule.suppress_notices", actions(), em("content.msgtype", "m.notice")),
		rule(".m.rule.invite_for_me", actions(aNotify, aSound), em("type", "m.room.member"), em("content.membership", "invite"), em("state_key", userID)),
		rule(".m.rule.member_event", actions(), em("type", "m.room.member")),
		rule(".m.rule.is_user_mention", actions(aNotify, aSound, aHighlight),
			cond(`{"kind":"event_property_contains","key":"content.m\\.mentions.user_ids","value":`+string(me)+`}`)),
		rule(".m.rule.contains_display_name", actions(aNotify, aSound, aHighlight), cond(`{"kind":"contains_display_name"}`)),
		rule(".m.rule.is_room_mention", actions(aNotify, aHighlight),
			cond(`{"kind":"event_property_is","key":"content.m\\.mentions.room","value":true}`), senderPerm),
		rule(".m.rule.roomnotif", actions(aNotify, aHighlight), em("content.body", "@room"), senderPerm),
		rule(".m.rule.tombstone", actions(aNotify, aHighlight), em("type", "m.room.tombstone"), em("state_key", "")),
		rule(".m.rule.reaction", actions(), em("type", "m.reaction")),
		rule(".m.rule.room.server_acl", actions(), em("type", "m.room.server_acl"), em("state_key", "")),
		rule(".m.rule.suppress_edits", actions(),
			cond(`{"kind":"event_property_is","key":"content.m\\.relates_to.rel_type","value":"m.replace"}`)),
	}
	userName := pushRule{RuleID: ".m.rule.contains_user_name", Default: true, Enabled: true, Actions: actions(aNotify, aSound, aHighlight), Pattern: &localpart}
	twoMembers := cond(`{"kind":"room_member_count","is":"2"}`)
	underride := []pushRule{
		rule(".m.rule.call", actions(aNotify, aRing), em("type", "m.call.invite")),
		rule(".m.rule.encrypted_room_one_to_one", actions(aNotify, aSound), twoMembers, em("type", "m.room.encrypted")),
		rule(".m.rule.room_one_to_one", actions(aNotify, aSound), twoMembers, em("type", "m.room.message")),
		rule(".m.rule.message", actions(aNotify), em("type", "m.room.message")),
		rule(".m.rule.encrypted", actions(aNotify), em("type", "m.room.encrypted")),
	}
	return map[string][]pushRule{"override": override, "content": {userName}, "room": {}, "sender": {}, "underride": underride}
}

// ruleset returns the user's rules of every kind, in evaluation order:
// the master rule, then user rules, then the other default rules.
func (a *API) ruleset(ctx context.Context, userID string) (map[string][]pushRule, error) {
	defs := defaultRuleset(userID)
	// The user's changes to default rules.
	rows, err := a.db.QueryContext(ctx, `SELECT rule_id, enabled, actions FROM cs_push_defaults WHERE user_id = ?`, userID)
	if err != nil {
		return nil, err
	}
	type change struct {
		enabled sql.NullInt64
		actions sql.NullString
	}
	changes := map[string]change{}
	for rows.Next() {
		var id string
		var c change
		if err := rows.Scan(&id, &c.enabled, &c.actions); err != nil {
			rows.Close()
			return nil, err
		}
		changes[id] = c
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, rules := range defs {
		for i := range rules {
			c, ok := changes[rules[i].RuleID]
			if !ok {
				continue
			}
			if c.enabled.Valid {
				rules[i].Enabled = c.enabled.Int64 != 0
			}
			if c.actions.Valid {
				var acts []json.RawMessage
				if json.Unmarshal([]byte(c.actions.String), &acts) == nil {
					rules[i].Actions = actions(acts...)
				}
			}
		}
	}
	user, err := a.userPushRules(ctx, userID)
	if err != nil {
		return nil, err
	}
	out := map[string][]pushRule{}
	for _, kind := range pushKinds {
		list := []pushRule{}
		d := defs[kind]
		if kind == "override" && len(d) > 0 {
			list = append(list, d[0])
			d = d[1:]
		}
		list = append(list, user[kind]...)
		out[kind] = append(list, d...)
	}
	return out, nil
}

func (a *API) userPushRules(ctx context.Context, userID string) (map[string][]pushRule, error) {
	rows, err := a.db.QueryContext(ctx, `SELECT kind, rule_json FROM cs_push_rules WHERE user_id = ? ORDER BY kind, priority`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][]pushRule{}
	for rows.Next() {
		var kind, js string
		if err := rows.Scan(&kind, &js); err != nil {
			return nil, err
		}
		var r pushRule
		if err := json.Unmarshal([]byte(js), &r); err != nil {
			return nil, err
		}
		out[kind] = append(out[kind], r)
	}
	return out, rows.Err()
}

// pushRulesChanged writes the user's rule set to the account data log as
// m.push_rules, where clients learn of changes through /sync.
func (a *API) pushRulesChanged(ctx context.Context, userID string) error {
	rs, err := a.ruleset(ctx, userID)
	if err != nil {
		return err
	}
	content, err := json.Marshal(map[string]any{"global": rs})
	if err != nil {
		return err
	}
	return a.publishAndWait(ctx, logs.AccountData, "", syncapi.AccountDataEntry{UserID: userID, Type: "m.push_rules", Content: content})
}

func (a *API) getPushRules(w http.ResponseWriter, r *http.Request, d *device) error {
	rs, err := a.ruleset(r.Context(), d.userID)
	if err != nil {
		return err
	}
	if strings.HasSuffix(r.URL.Path, "/global/") {
		httputil.WriteJSON(w, 200, rs)
		return nil
	}
	httputil.WriteJSON(w, 200, map[string]any{"global": rs})
	return nil
}

func pushKind(r *http.Request) (string, error) {
	k := r.PathValue("kind")
	for _, known := range pushKinds {
		if k == known {
			return k, nil
		}
	}
	return "", httputil.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "unknown push rule kind")
}

// findPushRule returns the rule of the kind with the ID (default or not).
func (a *API) findPushRule(ctx context.Context, userID, kind, ruleID string) (*pushRule, error) {
	rs, err := a.ruleset(ctx, userID)
	if err != nil {
		return nil, err
	}
	for _, rule := range rs[kind] {
		if rule.RuleID == ruleID {
			return &rule, nil
		}
	}
	return nil, notFound("no such push rule")
}

func (a *API) getPushRule(w http.ResponseWriter, r *http.Request, d *device) error {
	kind, err := pushKind(r)
	if err != nil {
		return err
	}
	rule, err := a.findPushRule(r.Context(), d.userID, kind, r.PathValue("ruleId"))
	if err != nil {
		return err
	}
	httputil.WriteJSON(w, 200, rule)
	return nil
}

// checkAction accepts the spec's action forms: a string, or an object
// with a string set_tweak.
func checkActions(acts []json.RawMessage) error {
	for _, act := range acts {
		var s string
		if json.Unmarshal(act, &s) == nil {
			continue
		}
		var tw struct {
			SetTweak *string `json:"set_tweak"`
		}
		if json.Unmarshal(act, &tw) != nil || tw.SetTweak == nil {
			return httputil.Errorf(http.StatusBadRequest, "M_BAD_JSON", "an action is a string or an object with set_tweak")
		}
	}
	return nil
}

func (a *API) putPushRule(w http.ResponseWriter, r *http.Request, d *device) error {
	kind, err := pushKind(r)
	if err != nil {
		return err
	}
	ruleID := r.PathValue("ruleId")
	if ruleID == "" || strings.HasPrefix(ruleID, ".") || strings.ContainsAny(ruleID, `/\`) || len(ruleID) > 255 {
		return httputil.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "rule IDs must not start with . or contain / or \\")
	}
	var req struct {
		Actions    *[]json.RawMessage `json:"actions"`
		Conditions []json.RawMessage  `json:"conditions"`
		Pattern    *string            `json:"pattern"`
	}
	if err := httputil.ReadJSON(r, &req); err != nil {
		return err
	}
	if req.Actions == nil {
		return httputil.Errorf(http.StatusBadRequest, "M_MISSING_PARAM", "actions is required")
	}
	if err := checkActions(*req.Actions); err != nil {
		return err
	}
	rule := pushRule{RuleID: ruleID, Enabled: true, Actions: actions(*req.Actions...)}
	switch kind {
	case "override", "underride":
		conds := req.Conditions
		if conds == nil {
			conds = []json.RawMessage{}
		}
		rule.Conditions = &conds
		for _, c := range conds {
			var k struct {
				Kind string `json:"kind"`
			}
			if json.Unmarshal(c, &k) != nil || k.Kind == "" {
				return httputil.Errorf(http.StatusBadRequest, "M_BAD_JSON", "a condition is an object with a kind")
			}
		}
	case "content":
		if req.Pattern == nil {
			return httputil.Errorf(http.StatusBadRequest, "M_MISSING_PARAM", "content rules need a pattern")
		}
		rule.Pattern = req.Pattern
	case "room":
		if _, err := id.ParseRoomID(ruleID); err != nil {
			return httputil.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "room rule IDs are room IDs")
		}
	case "sender":
		if _, err := id.ParseUserID(ruleID); err != nil {
			return httputil.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "sender rule IDs are user IDs")
		}
	}
	ruleJSON, _ := json.Marshal(rule)
	q := r.URL.Query()
	before, after := q.Get("before"), q.Get("after")

	lock := a.roomLock("pushrules:" + d.userID)
	lock.Lock()
	defer lock.Unlock()
	existing, err := a.userPushRules(r.Context(), d.userID)
	if err != nil {
		return err
	}
	var ids []string
	for _, e := range existing[kind] {
		if e.RuleID != ruleID {
			ids = append(ids, e.RuleID)
		}
	}
	pos := 0 // no before/after: the most important user rule
	if before != "" || after != "" {
		anchor, offset := before, 0
		if anchor == "" {
			anchor, offset = after, 1
		}
		pos = -1
		for i, e := range ids {
			if e == anchor {
				pos = i + offset
			}
		}
		if pos < 0 {
			return httputil.Errorf(http.StatusBadRequest, "M_UNKNOWN", "before/after names no user rule of this kind")
		}
	}
	ids = append(ids[:pos], append([]string{ruleID}, ids[pos:]...)...)
	tx, err := a.db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`DELETE FROM cs_push_rules WHERE user_id = ? AND kind = ? AND rule_id = ?`, d.userID, kind, ruleID); err != nil {
		return err
	}
	if _, err := tx.Exec(`INSERT INTO cs_push_rules (user_id, kind, rule_id, priority, rule_json) VALUES (?, ?, ?, 0, ?)`, d.userID, kind, ruleID, string(ruleJSON)); err != nil {
		return err
	}
	for i, id := range ids {
		if _, err := tx.Exec(`UPDATE cs_push_rules SET priority = ? WHERE user_id = ? AND kind = ? AND rule_id = ?`, i, d.userID, kind, id); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	if err := a.pushRulesChanged(r.Context(), d.userID); err != nil {
		return err
	}
	httputil.WriteJSON(w, 200, map[string]any{})
	return nil
}

func (a *API) deletePushRule(w http.ResponseWriter, r *http.Request, d *device) error {
	kind, err := pushKind(r)
	if err != nil {
		return err
	}
	res, err := a.db.ExecContext(r.Context(), `DELETE FROM cs_push_rules WHERE user_id = ? AND kind = ? AND rule_id = ?`, d.userID, kind, r.PathValue("ruleId"))
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if strings.HasPrefix(r.PathValue("ruleId"), ".") {
			return forbidden("server-default rules cannot be deleted")
		}
		return notFound("no such push rule")
	}
	if err := a.pushRulesChanged(r.Context(), d.userID); err != nil {
		return err
	}
	httputil.WriteJSON(w, 200, map[string]any{})
	return nil
}

func (a *API) pushRuleAttr(attr string) authedHandler {
	return func(w http.ResponseWriter, r *http.Request, d *device) error {
		kind, err := pushKind(r)
		if err != nil {
			return err
		}
		rule, err := a.findPushRule(r.Context(), d.userID, kind, r.PathValue("ruleId"))
		if err != nil {
			return err
		}
		if attr == "enabled" {
			httputil.WriteJSON(w, 200, map[string]bool{"enabled": rule.Enabled})
		} else {
			httputil.WriteJSON(w, 200, map[string]any{"actions": rule.Actions})
		}
		return nil
	}
}

func (a *API) putPushRuleAttr(attr string) authedHandler {
	return func(w http.ResponseWriter, r *http.Request, d *device) error {
		kind, err := pushKind(r)
		if err != nil {
			return err
		}
		ruleID := r.PathValue("ruleId")
		var req struct {
			Enabled *bool              `json:"enabled"`
			Actions *[]json.RawMessage `json:"actions"`
		}
		if err := httputil.ReadJSON(r, &req); err != nil {
			return err
		}
		if (attr == "enabled" && req.Enabled == nil) || (attr == "actions" && req.Actions == nil) {
			return httputil.Errorf(http.StatusBadRequest, "M_MISSING_PARAM", attr+" is required")
		}
		if attr == "actions" {
			if err := checkActions(*req.Actions); err != nil {
				return err
			}
		}
		lock := a.roomLock("pushrules:" + d.userID)
		lock.Lock()
		defer lock.Unlock()
		rule, err := a.findPushRule(r.Context(), d.userID, kind, ruleID)
		if err != nil {
			return err
		}
		if attr == "enabled" {
			rule.Enabled = *req.Enabled
		} else {
			rule.Actions = actions(*req.Actions...)
		}
		if rule.Default {
			enabled := 0
			if rule.Enabled {
				enabled = 1
			}
			acts, _ := json.Marshal(rule.Actions)
			tx, err := a.db.Begin()
			if err != nil {
				return err
			}
			defer tx.Rollback()
			if _, err := tx.Exec(`DELETE FROM cs_push_defaults WHERE user_id = ? AND rule_id = ?`, d.userID, ruleID); err != nil {
				return err
			}
			if _, err := tx.Exec(`INSERT INTO cs_push_defaults (user_id, rule_id, enabled, actions) VALUES (?, ?, ?, ?)`, d.userID, ruleID, enabled, string(acts)); err != nil {
				return err
			}
			if err := tx.Commit(); err != nil {
				return err
			}
		} else {
			js, _ := json.Marshal(rule)
			if _, err := a.db.ExecContext(r.Context(), `UPDATE cs_push_rules SET rule_json = ? WHERE user_id = ? AND kind = ? AND rule_id = ?`, string(js), d.userID, kind, ruleID); err != nil {
				return err
			}
		}
		if err := a.pushRulesChanged(r.Context(), d.userID); err != nil {
			return err
		}
		httputil.WriteJSON(w, 200, map[string]any{})
		return nil
	}
}
