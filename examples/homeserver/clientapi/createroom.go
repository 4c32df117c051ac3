package clientapi

import (
	"encoding/json"
	"net/http"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/httputil"
	"github.com/gomatrixlib/gomatrixlib/id"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
)

type createRoomRequest struct {
	Visibility      string         `json:"visibility"`
	RoomAliasName   string         `json:"room_alias_name"`
	Name            string         `json:"name"`
	Topic           string         `json:"topic"`
	Invite          []string       `json:"invite"`
	RoomVersion     string         `json:"room_version"`
	Preset          string         `json:"preset"`
	IsDirect        bool           `json:"is_direct"`
	CreationContent map[string]any `json:"creation_content"`
	InitialState    []struct {
		Type     string          `json:"type"`
		StateKey string          `json:"state_key"`
		Content  json.RawMessage `json:"content"`
	} `json:"initial_state"`
	PowerLevelContentOverride map[string]any `json:"power_level_content_override"`
}

// createRoom creates a room: the create event, the creator's join, power
// levels, join rules and history visibility from the preset, the initial
// state, name and topic, then the invites.
func (a *API) createRoom(w http.ResponseWriter, r *http.Request, d *device) error {
	var req createRoomRequest
	if err := httputil.ReadJSON(r, &req); err != nil {
		return err
	}
	version := req.RoomVersion
	if version == "" {
		version = roomversion.Default
	}
	rules, err := roomversion.Get(version)
	if err != nil {
		return httputil.Errorf(http.StatusBadRequest, "M_UNSUPPORTED_ROOM_VERSION", "unsupported room version "+version)
	}
	for _, u := range req.Invite {
		if _, err := id.ParseUserID(u); err != nil {
			return httputil.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "invite list holds an invalid user ID")
		}
	}
	alias := ""
	if req.RoomAliasName != "" {
		var err error
		if alias, err = a.parseLocalAlias("#" + req.RoomAliasName + ":" + a.serverName); err != nil {
			return err
		}
		if _, err := a.resolveAlias(r.Context(), alias); err == nil {
			return httputil.Errorf(http.StatusBadRequest, "M_ROOM_IN_USE", "room alias already taken")
		}
	}
	if req.Visibility != "" && req.Visibility != "public" && req.Visibility != "private" {
		return httputil.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "visibility must be public or private")
	}
	preset := req.Preset
	if preset == "" {
		preset = "private_chat"
		if req.Visibility == "public" {
			preset = "public_chat"
		}
	}
	joinRule := "invite"
	switch preset {
	case "public_chat":
		joinRule = "public"
	case "private_chat", "trusted_private_chat":
	default:
		return httputil.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "unknown preset")
	}

	create := map[string]any{}
	for k, v := range req.CreationContent {
		create[k] = v
	}
	create["room_version"] = rules.ID
	if !rules.CreatorFromSender {
		create["creator"] = d.userID
	}
	createJSON, _ := json.Marshal(create)
	empty := ""
	b := event.Builder{Type: "m.room.create", Sender: d.userID, StateKey: &empty, Content: createJSON, Depth: 1}
	if !rules.RoomIDFromCreateEvent {
		b.RoomID = "!" + randomHex(9) + ":" + a.serverName
	}
	ev, err := b.Build(rules, a.serverName, a.key.KeyID(), a.key.PrivateKey())
	if err != nil {
		return httputil.Errorf(http.StatusBadRequest, "M_BAD_JSON", err.Error())
	}
	roomID := ev.RoomID()
	lock := a.roomLock(roomID)
	lock.Lock()
	_, err = a.submit(r.Context(), rules, ev, nil, nil)
	lock.Unlock()
	if err != nil {
		return err
	}
	steps := []struct {
		typ     string
		sk      string
		content any
	}{}
	joinContent, err := a.memberContent(r.Context(), d.userID, "join", "")
	if err != nil {
		return err
	}
	steps = append(steps, struct {
		typ     string
		sk      string
		content any
	}{"m.room.member", d.userID, json.RawMessage(joinContent)})
	steps = append(steps, struct {
		typ     string
		sk      string
		content any
	}{"m.room.power_levels", "", a.powerLevels(rules, d.userID, preset, req)})
	steps = append(steps, struct {
		typ     string
		sk      string
		content any
	}{"m.room.join_rules", "", map[string]string{"join_rule": joinRule}})
	steps = append(steps, struct {
		typ     string
		sk      string
		content any
	}{"m.room.history_visibility", "", map[string]string{"history_visibility": "shared"}})
	if alias != "" {
		if err := a.createAlias(r.Context(), alias, roomID, d.userID); err != nil {
			return httputil.Errorf(http.StatusBadRequest, "M_ROOM_IN_USE", "room alias already taken")
		}
		steps = append(steps, struct {
			typ     string
			sk      string
			content any
		}{"m.room.canonical_alias", "", aliasContent(alias)})
	}
	if req.Visibility == "public" {
		if err := a.setVisibility(r.Context(), roomID, "public"); err != nil {
			return err
		}
	}
	for _, s := range req.InitialState {
		steps = append(steps, struct {
			typ     string
			sk      string
			content any
		}{s.Type, s.StateKey, s.Content})
	}
	if req.Name != "" {
		steps = append(steps, struct {
			typ     string
			sk      string
			content any
		}{"m.room.name", "", map[string]string{"name": req.Name}})
	}
	if req.Topic != "" {
		steps = append(steps, struct {
			typ     string
			sk      string
			content any
		}{"m.room.topic", "", map[string]string{"topic": req.Topic}})
	}
	for _, s := range steps {
		content, err := json.Marshal(s.content)
		if err != nil {
			return err
		}
		sk := s.sk
		if _, err := a.send(r.Context(), roomID, s.typ, d.userID, &sk, content, ""); err != nil {
			return err
		}
	}
	for _, u := range req.Invite {
		content, _ := json.Marshal(map[string]any{"membership": "invite", "is_direct": req.IsDirect})
		u := u
		if _, err := a.send(r.Context(), roomID, "m.room.member", d.userID, &u, content, ""); err != nil {
			return err
		}
	}
	httputil.WriteJSON(w, 200, map[string]string{"room_id": roomID})
	return nil
}

// powerLevels returns the initial power levels: the creator at 100 (from
// room version 12 creators have unlimited power and are not listed), the
// spec's defaults, the tombstone level above state_default where the room
// version asks for it, and the client's override.
func (a *API) powerLevels(rules roomversion.Rules, creator, preset string, req createRoomRequest) map[string]any {
	users := map[string]any{}
	if !rules.PrivilegedCreators {
		users[creator] = 100
	}
	if preset == "trusted_private_chat" {
		for _, u := range req.Invite {
			if u != creator {
				users[u] = 100
			}
		}
	}
	events := map[string]any{
		"m.room.name": 50, "m.room.power_levels": 100, "m.room.history_visibility": 100,
		"m.room.canonical_alias": 50, "m.room.avatar": 50, "m.room.tombstone": 100,
		"m.room.server_acl": 100, "m.room.encryption": 100,
	}
	if rules.ExplicitTombstonePowerLevel {
		events["m.room.tombstone"] = 150
	}
	pl := map[string]any{
		"users": users, "users_default": 0, "events": events, "events_default": 0,
		"state_default": 50, "ban": 50, "kick": 50, "redact": 50, "invite": 0,
		"notifications": map[string]any{"room": 50},
	}
	if preset == "public_chat" {
		pl["invite"] = 0
	}
	for k, v := range req.PowerLevelContentOverride {
		pl[k] = v
	}
	return pl
}
