package clientapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/httputil"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/syncapi"
	"github.com/gomatrixlib/gomatrixlib/id"
	"github.com/tidwall/gjson"
)

type ctxKey struct{}

// Handler returns the client-server API, under /_matrix/client/v3 and the
// older /_matrix/client/r0.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_matrix/client/versions", func(w http.ResponseWriter, r *http.Request) {
		httputil.WriteJSON(w, 200, map[string]any{"versions": []string{"r0.5.0", "r0.6.0", "r0.6.1", "v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6", "v1.7", "v1.8", "v1.9", "v1.10", "v1.11"}})
	})
	open := map[string]func(http.ResponseWriter, *http.Request) error{
		"GET /login":                        a.loginFlows,
		"POST /login":                       a.login,
		"POST /register":                    a.register,
		"GET /register/available":           a.registerAvailable,
		"GET /profile/{userId}":             a.getProfile,
		"GET /profile/{userId}/displayname": a.getProfile,
	}
	authed := map[string]func(http.ResponseWriter, *http.Request, *device) error{
		"POST /logout":                                     a.logout,
		"GET /account/whoami":                              a.whoami,
		"POST /createRoom":                                 a.createRoom,
		"POST /rooms/{roomId}/join":                        a.join,
		"POST /join/{roomId}":                              a.join,
		"POST /rooms/{roomId}/leave":                       a.leave,
		"POST /rooms/{roomId}/invite":                      a.membershipOf("invite"),
		"POST /rooms/{roomId}/kick":                        a.membershipOf("leave"),
		"POST /rooms/{roomId}/ban":                         a.membershipOf("ban"),
		"POST /rooms/{roomId}/unban":                       a.membershipOf("leave"),
		"PUT /rooms/{roomId}/send/{eventType}/{txnId}":     a.sendMessage,
		"PUT /rooms/{roomId}/redact/{eventId}/{txnId}":     a.redact,
		"GET /rooms/{roomId}/state":                        a.getState,
		"GET /rooms/{roomId}/state/{eventType}":            a.getStateEvent,
		"GET /rooms/{roomId}/state/{eventType}/{stateKey}": a.getStateEvent,
		"PUT /rooms/{roomId}/state/{eventType}":            a.putState,
		"PUT /rooms/{roomId}/state/{eventType}/{stateKey}": a.putState,
		"GET /rooms/{roomId}/messages":                     a.messages,
		"GET /rooms/{roomId}/joined_members":               a.joinedMembers,
		"GET /joined_rooms":                                a.joinedRooms,
		"GET /sync":                                        a.syncHandler,
		"PUT /profile/{userId}/displayname":                a.putDisplayName,
		"POST /user/{userId}/filter":                       a.postFilter,
		"GET /pushrules/":                                  a.emptyObject,
		"GET /capabilities":                                a.capabilities,
	}
	for _, prefix := range []string{"/_matrix/client/v3", "/_matrix/client/r0"} {
		for pattern, h := range open {
			method, path, _ := strings.Cut(pattern, " ")
			mux.HandleFunc(method+" "+prefix+path, wrap(h))
		}
		for pattern, h := range authed {
			method, path, _ := strings.Cut(pattern, " ")
			mux.HandleFunc(method+" "+prefix+path, wrap(a.authenticate(h)))
		}
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { httputil.WriteError(w, httputil.ErrNotFound) })
	return cors(mux)
}

func cors(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS")
		w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func wrap(h func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			httputil.WriteError(w, err)
		}
	}
}

// authenticate accepts the access token as a Bearer header or as the
// access_token query parameter.
func (a *API) authenticate(h func(http.ResponseWriter, *http.Request, *device) error) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		token := r.URL.Query().Get("access_token")
		if auth := r.Header.Get("Authorization"); auth != "" {
			scheme, t, ok := strings.Cut(auth, " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") {
				return httputil.ErrMissingToken
			}
			token = strings.TrimSpace(t)
		}
		if token == "" {
			return httputil.ErrMissingToken
		}
		d, err := a.deviceByToken(r.Context(), token)
		if err != nil {
			return err
		}
		return h(w, r, d)
	}
}

func (a *API) emptyObject(w http.ResponseWriter, _ *http.Request, _ *device) error {
	httputil.WriteJSON(w, 200, map[string]any{"global": map[string]any{}})
	return nil
}

func (a *API) capabilities(w http.ResponseWriter, _ *http.Request, _ *device) error {
	httputil.WriteJSON(w, 200, map[string]any{"capabilities": map[string]any{}})
	return nil
}

func (a *API) postFilter(w http.ResponseWriter, _ *http.Request, _ *device) error {
	// Filters are not stored; /sync reads an inline filter's timeline limit.
	httputil.WriteJSON(w, 200, map[string]string{"filter_id": "0"})
	return nil
}

func (a *API) loginFlows(w http.ResponseWriter, _ *http.Request) error {
	httputil.WriteJSON(w, 200, map[string]any{"flows": []map[string]string{{"type": "m.login.password"}}})
	return nil
}

func badJSON(msg string) error { return httputil.Errorf(http.StatusBadRequest, "M_BAD_JSON", msg) }

func (a *API) register(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Username     string `json:"username"`
		Password     string `json:"password"`
		DeviceID     string `json:"device_id"`
		InhibitLogin bool   `json:"inhibit_login"`
		Auth         *struct {
			Type string `json:"type"`
		} `json:"auth"`
	}
	if err := httputil.ReadJSON(r, &req); err != nil {
		return err
	}
	if kind := r.URL.Query().Get("kind"); kind != "" && kind != "user" {
		return httputil.Errorf(http.StatusForbidden, "M_GUEST_ACCESS_FORBIDDEN", "guest accounts are not supported")
	}
	if req.Auth == nil || req.Auth.Type != "m.login.dummy" {
		httputil.WriteJSON(w, http.StatusUnauthorized, map[string]any{
			"flows": []map[string]any{{"stages": []string{"m.login.dummy"}}}, "params": map[string]any{}, "session": randomHex(8)})
		return nil
	}
	if req.Username == "" {
		req.Username = "u" + randomHex(6)
	}
	userID := "@" + req.Username + ":" + a.serverName
	if u, err := id.ParseUserID(userID); err != nil || u.Historical() {
		return httputil.Errorf(http.StatusBadRequest, "M_INVALID_USERNAME", "user names may contain only a-z, 0-9, . _ = - / +")
	}
	if req.Password == "" {
		return httputil.Errorf(http.StatusBadRequest, "M_MISSING_PARAM", "password is required")
	}
	exists, err := a.accountExists(r.Context(), userID)
	if err != nil {
		return err
	}
	if exists {
		return httputil.Errorf(http.StatusBadRequest, "M_USER_IN_USE", "user name taken")
	}
	if err := a.createAccount(r.Context(), userID, req.Password); err != nil {
		if exists, _ := a.accountExists(r.Context(), userID); exists {
			return httputil.Errorf(http.StatusBadRequest, "M_USER_IN_USE", "user name taken")
		}
		return err
	}
	resp := map[string]any{"user_id": userID, "home_server": a.serverName}
	if !req.InhibitLogin {
		d, err := a.newDevice(r.Context(), userID, req.DeviceID)
		if err != nil {
			return err
		}
		resp["access_token"], resp["device_id"] = d.token, d.deviceID
	}
	httputil.WriteJSON(w, 200, resp)
	return nil
}

func (a *API) registerAvailable(w http.ResponseWriter, r *http.Request) error {
	name := r.URL.Query().Get("username")
	userID := "@" + name + ":" + a.serverName
	if u, err := id.ParseUserID(userID); err != nil || u.Historical() {
		return httputil.Errorf(http.StatusBadRequest, "M_INVALID_USERNAME", "invalid user name")
	}
	exists, err := a.accountExists(r.Context(), userID)
	if err != nil {
		return err
	}
	if exists {
		return httputil.Errorf(http.StatusBadRequest, "M_USER_IN_USE", "user name taken")
	}
	httputil.WriteJSON(w, 200, map[string]bool{"available": true})
	return nil
}

func (a *API) login(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Type       string `json:"type"`
		User       string `json:"user"`
		Identifier struct {
			Type string `json:"type"`
			User string `json:"user"`
		} `json:"identifier"`
		Password string `json:"password"`
		DeviceID string `json:"device_id"`
	}
	if err := httputil.ReadJSON(r, &req); err != nil {
		return err
	}
	if req.Type != "m.login.password" {
		return httputil.Errorf(http.StatusBadRequest, "M_UNKNOWN", "unsupported login type")
	}
	user := req.Identifier.User
	if user == "" {
		user = req.User
	}
	if !strings.HasPrefix(user, "@") {
		user = a.localUserID(user)
	}
	if err := a.checkPassword(r.Context(), user, req.Password); err != nil {
		return err
	}
	d, err := a.newDevice(r.Context(), user, req.DeviceID)
	if err != nil {
		return err
	}
	httputil.WriteJSON(w, 200, map[string]any{"user_id": user, "access_token": d.token, "device_id": d.deviceID, "home_server": a.serverName})
	return nil
}

func (a *API) logout(w http.ResponseWriter, r *http.Request, d *device) error {
	if _, err := a.db.ExecContext(r.Context(), `DELETE FROM cs_devices WHERE access_token = ?`, d.token); err != nil {
		return err
	}
	httputil.WriteJSON(w, 200, map[string]any{})
	return nil
}

func (a *API) whoami(w http.ResponseWriter, _ *http.Request, d *device) error {
	httputil.WriteJSON(w, 200, map[string]any{"user_id": d.userID, "device_id": d.deviceID})
	return nil
}

func (a *API) getProfile(w http.ResponseWriter, r *http.Request) error {
	userID := r.PathValue("userId")
	if s := serverOf(userID); s != "" && s != a.serverName {
		resp, err := a.remoteProfile(r.Context(), userID)
		if err != nil {
			return err
		}
		if strings.HasSuffix(r.URL.Path, "/displayname") {
			delete(resp, "avatar_url")
		}
		httputil.WriteJSON(w, 200, resp)
		return nil
	}
	name, ok, err := a.displayName(r.Context(), userID)
	if err != nil {
		return err
	}
	if !ok {
		return httputil.Errorf(http.StatusNotFound, "M_NOT_FOUND", "unknown user")
	}
	resp := map[string]any{}
	if name != "" {
		resp["displayname"] = name
	}
	httputil.WriteJSON(w, 200, resp)
	return nil
}

func (a *API) putDisplayName(w http.ResponseWriter, r *http.Request, d *device) error {
	if r.PathValue("userId") != d.userID {
		return httputil.Errorf(http.StatusForbidden, "M_FORBIDDEN", "cannot set another user's profile")
	}
	var req struct {
		DisplayName *string `json:"displayname"`
	}
	if err := httputil.ReadJSON(r, &req); err != nil {
		return err
	}
	if req.DisplayName == nil {
		return httputil.Errorf(http.StatusBadRequest, "M_MISSING_PARAM", "displayname is required")
	}
	if len(*req.DisplayName) > 256 {
		return httputil.Errorf(http.StatusBadRequest, "M_TOO_LARGE", "display name too long")
	}
	if _, err := a.db.ExecContext(r.Context(), `UPDATE cs_accounts SET displayname = ? WHERE user_id = ?`, *req.DisplayName, d.userID); err != nil {
		return err
	}
	httputil.WriteJSON(w, 200, map[string]any{})
	return nil
}

func (a *API) sendMessage(w http.ResponseWriter, r *http.Request, d *device) error {
	roomID, evType, txnID := r.PathValue("roomId"), r.PathValue("eventType"), r.PathValue("txnId")
	content, err := httputil.ReadRawObject(r)
	if err != nil {
		return err
	}
	eventID, err := a.idempotent(r.Context(), d, txnID, func() (string, error) {
		return a.send(r.Context(), roomID, evType, d.userID, nil, content, "")
	})
	if err != nil {
		return err
	}
	httputil.WriteJSON(w, 200, map[string]string{"event_id": eventID})
	return nil
}

func (a *API) redact(w http.ResponseWriter, r *http.Request, d *device) error {
	roomID, target, txnID := r.PathValue("roomId"), r.PathValue("eventId"), r.PathValue("txnId")
	var req struct {
		Reason string `json:"reason,omitempty"`
	}
	if err := httputil.ReadJSON(r, &req); err != nil {
		return err
	}
	content, _ := json.Marshal(req)
	eventID, err := a.idempotent(r.Context(), d, txnID, func() (string, error) {
		return a.send(r.Context(), roomID, "m.room.redaction", d.userID, nil, content, target)
	})
	if err != nil {
		return err
	}
	httputil.WriteJSON(w, 200, map[string]string{"event_id": eventID})
	return nil
}

// idempotent runs send once per (user, device, transaction ID).
func (a *API) idempotent(ctx context.Context, d *device, txnID string, send func() (string, error)) (string, error) {
	lock := a.roomLock("txn:" + d.token)
	lock.Lock()
	defer lock.Unlock()
	var eventID string
	err := a.db.QueryRowContext(ctx, `SELECT event_id FROM cs_txns WHERE user_id = ? AND device_id = ? AND txn_id = ?`, d.userID, d.deviceID, txnID).Scan(&eventID)
	if err == nil {
		return eventID, nil
	}
	eventID, err = send()
	if err != nil {
		return "", err
	}
	_, err = a.db.ExecContext(ctx, `INSERT INTO cs_txns (user_id, device_id, txn_id, event_id) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`, d.userID, d.deviceID, txnID, eventID)
	return eventID, err
}

func (a *API) requireJoined(roomID, userID string) error {
	m, err := a.membership(roomID, userID)
	if err != nil {
		return err
	}
	if m != "join" {
		return httputil.Errorf(http.StatusForbidden, "M_FORBIDDEN", "you are not joined to this room")
	}
	return nil
}

func (a *API) getState(w http.ResponseWriter, r *http.Request, d *device) error {
	roomID := r.PathValue("roomId")
	if err := a.requireJoined(roomID, d.userID); err != nil {
		return err
	}
	state, err := a.rs.CurrentState(roomID)
	if err != nil {
		return err
	}
	out := []json.RawMessage{}
	for _, p := range state {
		out = append(out, httputil.ClientEvent(p.JSON(), roomID, p.EventID()))
	}
	httputil.WriteJSON(w, 200, out)
	return nil
}

func (a *API) getStateEvent(w http.ResponseWriter, r *http.Request, d *device) error {
	roomID := r.PathValue("roomId")
	if err := a.requireJoined(roomID, d.userID); err != nil {
		return err
	}
	p, err := a.rs.CurrentStateEvent(roomID, r.PathValue("eventType"), r.PathValue("stateKey"))
	if err != nil {
		return err
	}
	if p != nil {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(p.Content())
		return nil
	}
	return httputil.Errorf(http.StatusNotFound, "M_NOT_FOUND", "no such state event")
}

func (a *API) putState(w http.ResponseWriter, r *http.Request, d *device) error {
	roomID, evType, sk := r.PathValue("roomId"), r.PathValue("eventType"), r.PathValue("stateKey")
	content, err := httputil.ReadRawObject(r)
	if err != nil {
		return err
	}
	eventID, err := a.send(r.Context(), roomID, evType, d.userID, &sk, content, "")
	if err != nil {
		return err
	}
	httputil.WriteJSON(w, 200, map[string]string{"event_id": eventID})
	return nil
}

func (a *API) join(w http.ResponseWriter, r *http.Request, d *device) error {
	roomID := r.PathValue("roomId")
	if _, err := id.ParseRoomID(roomID); err != nil {
		return httputil.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "only room IDs can be joined here; aliases are not supported")
	}
	if _, err := httputil.ReadRawObject(r); err != nil && r.ContentLength > 0 {
		return err
	}
	if !a.resident(roomID) {
		// Not in the room: join through a server that is.
		if err := a.remoteJoin(r.Context(), roomID, d.userID, a.joinServers(roomID, d.userID, r.URL.Query()["server_name"])); err != nil {
			return err
		}
		httputil.WriteJSON(w, 200, map[string]string{"room_id": roomID})
		return nil
	}
	content, err := a.memberContent(r.Context(), d.userID, "join", "")
	if err != nil {
		return err
	}
	if _, err := a.send(r.Context(), roomID, "m.room.member", d.userID, &d.userID, content, ""); err != nil {
		return err
	}
	httputil.WriteJSON(w, 200, map[string]string{"room_id": roomID})
	return nil
}

func (a *API) leave(w http.ResponseWriter, r *http.Request, d *device) error {
	roomID := r.PathValue("roomId")
	content, _ := json.Marshal(map[string]string{"membership": "leave"})
	if !a.resident(roomID) && a.rs.PendingInvite(roomID, d.userID) != nil {
		// Rejecting an invite to a room we are not in.
		if err := a.remoteLeave(r.Context(), roomID, d.userID); err != nil {
			return err
		}
		httputil.WriteJSON(w, 200, map[string]any{})
		return nil
	}
	if _, err := a.send(r.Context(), roomID, "m.room.member", d.userID, &d.userID, content, ""); err != nil {
		return err
	}
	httputil.WriteJSON(w, 200, map[string]any{})
	return nil
}

// membershipOf handles invite, kick, ban and unban: a member event about
// another user.
func (a *API) membershipOf(membership string) func(http.ResponseWriter, *http.Request, *device) error {
	return func(w http.ResponseWriter, r *http.Request, d *device) error {
		var req struct {
			UserID string `json:"user_id"`
			Reason string `json:"reason"`
		}
		if err := httputil.ReadJSON(r, &req); err != nil {
			return err
		}
		if _, err := id.ParseUserID(req.UserID); err != nil {
			return httputil.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "user_id is not a user ID")
		}
		content, err := a.memberContent(r.Context(), req.UserID, membership, req.Reason)
		if err != nil {
			return err
		}
		if membership == "invite" && serverOf(req.UserID) != a.serverName {
			if err := a.sendInvite(r.Context(), r.PathValue("roomId"), d.userID, req.UserID, content); err != nil {
				return err
			}
			httputil.WriteJSON(w, 200, map[string]any{})
			return nil
		}
		if _, err := a.send(r.Context(), r.PathValue("roomId"), "m.room.member", d.userID, &req.UserID, content, ""); err != nil {
			return err
		}
		httputil.WriteJSON(w, 200, map[string]any{})
		return nil
	}
}

func (a *API) memberContent(ctx context.Context, userID, membership, reason string) ([]byte, error) {
	c := map[string]any{"membership": membership}
	if reason != "" {
		c["reason"] = reason
	}
	if membership == "join" || membership == "invite" {
		if name, ok, err := a.displayName(ctx, userID); err != nil {
			return nil, err
		} else if ok && name != "" {
			c["displayname"] = name
		}
	}
	return json.Marshal(c)
}

func (a *API) joinedRooms(w http.ResponseWriter, r *http.Request, d *device) error {
	out, err := a.sync.JoinedRooms(r.Context(), d.userID)
	if err != nil {
		return err
	}
	httputil.WriteJSON(w, 200, map[string]any{"joined_rooms": out})
	return nil
}

func (a *API) joinedMembers(w http.ResponseWriter, r *http.Request, d *device) error {
	roomID := r.PathValue("roomId")
	if err := a.requireJoined(roomID, d.userID); err != nil {
		return err
	}
	state, err := a.rs.CurrentState(roomID)
	if err != nil {
		return err
	}
	joined := map[string]any{}
	for k, p := range state {
		if k.Type == "m.room.member" && p.Membership() == "join" {
			joined[k.StateKey] = map[string]any{"display_name": gjson.GetBytes(p.Content(), "displayname").Str}
		}
	}
	httputil.WriteJSON(w, 200, map[string]any{"joined": joined})
	return nil
}

func (a *API) messages(w http.ResponseWriter, r *http.Request, d *device) error {
	roomID := r.PathValue("roomId")
	m, err := a.membership(roomID, d.userID)
	if err != nil {
		return err
	}
	if m != "join" && m != "leave" && m != "ban" {
		return httputil.Errorf(http.StatusForbidden, "M_FORBIDDEN", "you are not in this room")
	}
	q := r.URL.Query()
	from, err := syncapi.ParseToken(q.Get("from"))
	if err != nil {
		return httputil.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", err.Error())
	}
	dir := q.Get("dir")
	if dir == "" {
		dir = "b"
	}
	if dir != "b" && dir != "f" {
		return httputil.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "dir must be b or f")
	}
	chunk, start, end, err := a.sync.Messages(r.Context(), roomID, d.userID, from, dir, parseLimit(q.Get("limit"), 10))
	if err != nil {
		return err
	}
	resp := map[string]any{"chunk": chunk, "start": start}
	if end != "" {
		resp["end"] = end
	}
	httputil.WriteJSON(w, 200, resp)
	return nil
}

func (a *API) syncHandler(w http.ResponseWriter, r *http.Request, d *device) error {
	q := r.URL.Query()
	since, err := syncapi.ParseToken(q.Get("since"))
	if err != nil {
		return httputil.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", err.Error())
	}
	timeout := time.Duration(parseLimit(q.Get("timeout"), 0)) * time.Millisecond
	if t := q.Get("timeout"); t != "" && timeout == 0 {
		timeout = 0
	}
	timeout = min(timeout, 60*time.Second)
	limit := 20
	lazy := false
	if f := q.Get("filter"); strings.HasPrefix(f, "{") {
		if l := gjson.Get(f, "room.timeline.limit"); l.Type == gjson.Number && l.Int() > 0 {
			limit = int(min(l.Int(), 1000))
		}
		lazy = gjson.Get(f, "room.state.lazy_load_members").Type == gjson.True
	}
	resp, err := a.sync.Sync(r.Context(), syncapi.Request{UserID: d.userID, Since: since, Timeout: timeout, TimelineLimit: limit, LazyLoadMembers: lazy})
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	}
	httputil.WriteJSON(w, 200, resp)
	return nil
}
