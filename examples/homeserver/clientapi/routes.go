package clientapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/eventauth"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/httputil"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/roomserver"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/syncapi"
	"github.com/gomatrixlib/gomatrixlib/id"
	"github.com/tidwall/gjson"
)

type ctxKey struct{}

// maxSyncTimeout caps a /sync long-poll.
const maxSyncTimeout = 5 * time.Minute

// Handler returns the client-server API, under /_matrix/client/v3 and the
// older /_matrix/client/r0.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_matrix/client/versions", a.versions)
	mux.HandleFunc("GET /.well-known/matrix/client", a.wellKnown)
	mux.HandleFunc("GET /_matrix/client/v1/register/m.login.registration_token/validity", a.wrap(a.registrationTokenValidity))
	open := map[string]func(http.ResponseWriter, *http.Request) error{
		"GET /login":                        a.loginFlows,
		"POST /login":                       a.login,
		"POST /register":                    a.register,
		"GET /register/available":           a.registerAvailable,
		"GET /profile/{userId}":             a.getProfile,
		"GET /profile/{userId}/displayname": a.getProfile,
		"GET /directory/room/{roomAlias}":   a.getAlias,
		"GET /directory/list/room/{roomId}": a.getVisibility,
		"GET /publicRooms":                  a.publicRoomsGet,
	}
	authed := map[string]func(http.ResponseWriter, *http.Request, *device) error{
		"POST /logout":                                          a.logout,
		"GET /account/whoami":                                   a.whoami,
		"POST /createRoom":                                      a.createRoom,
		"POST /rooms/{roomId}/join":                             a.join,
		"POST /join/{roomId}":                                   a.join,
		"POST /rooms/{roomId}/leave":                            a.leave,
		"POST /rooms/{roomId}/invite":                           a.membershipOf("invite"),
		"POST /rooms/{roomId}/kick":                             a.membershipOf("leave"),
		"POST /rooms/{roomId}/ban":                              a.membershipOf("ban"),
		"POST /rooms/{roomId}/unban":                            a.membershipOf("leave"),
		"PUT /rooms/{roomId}/send/{eventType}/{txnId}":          a.sendMessage,
		"PUT /rooms/{roomId}/redact/{eventId}/{txnId}":          a.redact,
		"GET /rooms/{roomId}/state":                             a.getState,
		"GET /rooms/{roomId}/state/{eventType}":                 a.getStateEvent,
		"GET /rooms/{roomId}/state/{eventType}/{stateKey...}":   a.getStateEvent,
		"PUT /rooms/{roomId}/state/{eventType}":                 a.putState,
		"PUT /rooms/{roomId}/state/{eventType}/{stateKey...}":   a.putState,
		"GET /rooms/{roomId}/messages":                          a.messages,
		"GET /rooms/{roomId}/event/{eventId}":                   a.getEvent,
		"GET /rooms/{roomId}/joined_members":                    a.joinedMembers,
		"GET /joined_rooms":                                     a.joinedRooms,
		"GET /sync":                                             a.syncHandler,
		"PUT /profile/{userId}/displayname":                     a.putDisplayName,
		"POST /user/{userId}/filter":                            a.postFilter,
		"GET /user/{userId}/filter/{filterId}":                  a.getFilter,
		"PUT /rooms/{roomId}/typing/{userId}":                   a.putTyping,
		"POST /rooms/{roomId}/receipt/{receiptType}/{eventId}":  a.postReceipt,
		"POST /rooms/{roomId}/read_markers":                     a.postReadMarkers,
		"GET /user/{userId}/account_data/{type}":                a.getAccountData,
		"PUT /user/{userId}/account_data/{type}":                a.putAccountData,
		"GET /user/{userId}/rooms/{roomId}/account_data/{type}": a.getAccountData,
		"PUT /user/{userId}/rooms/{roomId}/account_data/{type}": a.putAccountData,
		"GET /presence/{userId}/status":                         a.getPresence,
		"PUT /presence/{userId}/status":                         a.putPresence,
		"PUT /sendToDevice/{eventType}/{txnId}":                 a.sendToDevice,
		"GET /pushrules/":                                       a.pushRules,
		"GET /pushrules/global/":                                a.pushRules,
		"GET /voip/turnServer":                                  a.turnServer,
		"GET /thirdparty/protocols":                             a.thirdpartyProtocols,
		"GET /room_keys/version":                                a.roomKeysVersion,
		"GET /rooms/{roomId}/members":                           a.members,
		"GET /devices":                                          a.getDevices,
		"GET /devices/{deviceId}":                               a.getDevice,
		"PUT /devices/{deviceId}":                               a.putDevice,
		"DELETE /devices/{deviceId}":                            a.deleteDevice,
		"POST /delete_devices":                                  a.deleteDevices,
		"PUT /directory/room/{roomAlias}":                       a.putAlias,
		"DELETE /directory/room/{roomAlias}":                    a.deleteAlias,
		"GET /rooms/{roomId}/aliases":                           a.roomAliases,
		"PUT /directory/list/room/{roomId}":                     a.putVisibility,
		"POST /publicRooms":                                     a.publicRoomsPost,
		"POST /user_directory/search":                           a.userDirectorySearch,
		"POST /keys/upload":                                     a.keysUpload,
		"POST /keys/query":                                      a.keysQuery,
		"POST /keys/claim":                                      a.keysClaim,
		"GET /keys/changes":                                     a.keysChanges,
		"GET /capabilities":                                     a.capabilities,
	}
	a.addRoutes(mux, open, authed) // push rule changes (ext.go)
	for _, prefix := range []string{"/_matrix/client/v3", "/_matrix/client/r0"} {
		for pattern, h := range open {
			method, path, _ := strings.Cut(pattern, " ")
			mux.HandleFunc(method+" "+prefix+path, a.wrap(h))
		}
		for pattern, h := range authed {
			method, path, _ := strings.Cut(pattern, " ")
			mux.HandleFunc(method+" "+prefix+path, a.wrap(a.authenticate(h)))
		}
	}
	a.mediaRoutes(mux)
	return a.logRequests(cors(route(mux)))
}

// route answers what the mux alone answers badly: a path with an empty or
// dot segment (the mux would redirect to the cleaned path) gets 400, a path
// that is not valid UTF-8 once unescaped gets 400, an unknown path 404 and
// a known path with another method 405, all as Matrix errors.
func route(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.EscapedPath()
		if strings.Contains(p, "//") || strings.Contains(p+"/", "/./") || strings.Contains(p+"/", "/../") {
			httputil.WriteError(w, httputil.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "empty or dot segment in the request path"))
			return
		}
		if !utf8.ValidString(r.URL.Path) {
			httputil.WriteError(w, httputil.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "request path is not valid UTF-8"))
			return
		}
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, pattern := mux.Handler(probe); pattern != "" {
				httputil.WriteError(w, httputil.Errorf(http.StatusMethodNotAllowed, "M_UNRECOGNIZED", "method not allowed on this path"))
				return
			}
		}
		httputil.WriteError(w, httputil.ErrNotFound)
	})
}

// logRequests logs every request at debug level, and those answered with
// a status of 400 or more at info level (method, path without the query,
// status), so that tests and operators can see what clients asked for
// that the server refused or lacks.
func (a *API) logRequests(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: 200}
		h.ServeHTTP(rec, r)
		level := slog.LevelDebug
		if rec.status >= 400 {
			level = slog.LevelInfo
		}
		a.log.Log(r.Context(), level, "request", "method", r.Method, "path", r.URL.Path, "status", rec.status)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
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

// wrap turns a handler's error into a Matrix error response. An error
// that is not a Matrix error is a 500, logged with its text, unless the
// client went away (its request context ended), which is not answered.
func (a *API) wrap(h func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil {
			return
		}
		var me *httputil.Error
		if !errors.As(err, &me) {
			if r.Context().Err() != nil {
				a.log.Debug("request ended by the client", "method", r.Method, "path", r.URL.Path, "err", err)
				w.WriteHeader(499)
				return
			}
			a.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		httputil.WriteError(w, err)
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

func (a *API) loginFlows(w http.ResponseWriter, _ *http.Request) error {
	httputil.WriteJSON(w, 200, map[string]any{"flows": []map[string]string{{"type": "m.login.password"}}})
	return nil
}

func badJSON(msg string) error { return httputil.Errorf(http.StatusBadRequest, "M_BAD_JSON", msg) }

var registrationTokenPattern = regexp.MustCompile(`^[A-Za-z0-9._~-]{1,64}$`)

func (a *API) register(w http.ResponseWriter, r *http.Request) error {
	if err := a.registerLimit.check(clientAddr(r)); err != nil {
		return err
	}
	var req struct {
		Username     string `json:"username"`
		Password     string `json:"password"`
		DeviceID     string `json:"device_id"`
		DeviceName   string `json:"initial_device_display_name"`
		InhibitLogin bool   `json:"inhibit_login"`
		Auth         *struct {
			Type    string `json:"type"`
			Token   string `json:"token"`
			Session string `json:"session"`
		} `json:"auth"`
	}
	if err := httputil.ReadJSON(r, &req); err != nil {
		return err
	}
	if kind := r.URL.Query().Get("kind"); kind != "" && kind != "user" {
		return httputil.Errorf(http.StatusForbidden, "M_GUEST_ACCESS_FORBIDDEN", "guest accounts are not supported")
	}
	if a.registration == "closed" {
		return httputil.Errorf(http.StatusForbidden, "M_FORBIDDEN", "registration is closed on this server")
	}
	// User name errors come before user-interactive auth.
	if req.Username == "" {
		req.Username = "u" + randomHex(6)
	}
	userID := "@" + req.Username + ":" + a.serverName
	if u, err := id.ParseUserID(userID); err != nil || u.Historical() {
		return httputil.Errorf(http.StatusBadRequest, "M_INVALID_USERNAME", "user names may contain only a-z, 0-9, . _ = - / +")
	}
	exists, err := a.accountExists(r.Context(), userID)
	if err != nil {
		return err
	}
	if exists {
		return httputil.Errorf(http.StatusBadRequest, "M_USER_IN_USE", "user name taken")
	}
	stage := "m.login.dummy"
	if a.registration == "token" {
		stage = "m.login.registration_token"
	}
	challenge := func(errcode, msg string) {
		body := map[string]any{"flows": []map[string]any{{"stages": []string{stage}}}, "params": map[string]any{}, "session": randomHex(8)}
		if req.Auth != nil && req.Auth.Session != "" {
			body["session"] = req.Auth.Session
		}
		if errcode != "" {
			body["errcode"], body["error"] = errcode, msg
		}
		httputil.WriteJSON(w, http.StatusUnauthorized, body)
	}
	if req.Auth == nil || req.Auth.Type != stage {
		challenge("", "")
		return nil
	}
	if req.Password == "" {
		return httputil.Errorf(http.StatusBadRequest, "M_MISSING_PARAM", "password is required")
	}
	if stage == "m.login.registration_token" {
		ok, err := a.useRegistrationToken(r.Context(), req.Auth.Token)
		if err != nil {
			return err
		}
		if !ok {
			challenge("M_FORBIDDEN", "invalid registration token")
			return nil
		}
	}
	if err := a.createAccount(r.Context(), userID, req.Password); err != nil {
		if exists, _ := a.accountExists(r.Context(), userID); exists {
			return httputil.Errorf(http.StatusBadRequest, "M_USER_IN_USE", "user name taken")
		}
		return err
	}
	resp := map[string]any{"user_id": userID, "home_server": a.serverName}
	if !req.InhibitLogin {
		d, err := a.newDevice(r.Context(), userID, req.DeviceID, req.DeviceName)
		if err != nil {
			return err
		}
		resp["access_token"], resp["device_id"] = d.token, d.deviceID
	}
	httputil.WriteJSON(w, 200, resp)
	return nil
}

// useRegistrationToken counts one use of a valid token.
func (a *API) useRegistrationToken(ctx context.Context, token string) (bool, error) {
	if !registrationTokenPattern.MatchString(token) {
		return false, nil
	}
	res, err := a.db.ExecContext(ctx, `UPDATE cs_registration_tokens SET completed = completed + 1
		WHERE token = ? AND (uses_allowed IS NULL OR completed < uses_allowed)`, token)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func (a *API) registrationTokenValidity(w http.ResponseWriter, r *http.Request) error {
	if a.registration == "closed" {
		return httputil.Errorf(http.StatusForbidden, "M_FORBIDDEN", "registration is closed on this server")
	}
	if err := a.registerLimit.check(clientAddr(r)); err != nil {
		return err
	}
	token := r.URL.Query().Get("token")
	var n int
	valid := false
	if registrationTokenPattern.MatchString(token) {
		err := a.db.QueryRowContext(r.Context(), `SELECT COUNT(*) FROM cs_registration_tokens WHERE token = ? AND (uses_allowed IS NULL OR completed < uses_allowed)`, token).Scan(&n)
		if err != nil {
			return err
		}
		valid = n > 0
	}
	httputil.WriteJSON(w, 200, map[string]bool{"valid": valid})
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
	if err := a.loginLimit.check(clientAddr(r)); err != nil {
		return err
	}
	var req struct {
		Type       string `json:"type"`
		User       string `json:"user"`
		Identifier struct {
			Type string `json:"type"`
			User string `json:"user"`
		} `json:"identifier"`
		Password   string `json:"password"`
		DeviceID   string `json:"device_id"`
		DeviceName string `json:"initial_device_display_name"`
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
	d, err := a.newDevice(r.Context(), user, req.DeviceID, req.DeviceName)
	if err != nil {
		return err
	}
	httputil.WriteJSON(w, 200, map[string]any{"user_id": user, "access_token": d.token, "device_id": d.deviceID, "home_server": a.serverName})
	return nil
}

func (a *API) logout(w http.ResponseWriter, r *http.Request, d *device) error {
	_, err := a.db.ExecContext(r.Context(), `DELETE FROM cs_devices WHERE access_token = ?`, tokenKey(d.token))
	a.tokens.forget()
	if err != nil {
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
	if err := a.sendLimit.check(d.userID); err != nil {
		return err
	}
	roomID, evType, txnID := r.PathValue("roomId"), r.PathValue("eventType"), r.PathValue("txnId")
	content, err := httputil.ReadRawObject(r)
	if err != nil {
		return err
	}
	eventID, err := a.idempotent(r.Context(), d, "send/"+txnID, func(txn *roomserver.Txn) (string, error) {
		return a.sendTxn(r.Context(), txn, roomID, evType, d.userID, nil, content, "")
	})
	if err != nil {
		return err
	}
	a.touch(r.Context(), d.userID, "")
	httputil.WriteJSON(w, 200, map[string]string{"event_id": eventID})
	return nil
}

func (a *API) redact(w http.ResponseWriter, r *http.Request, d *device) error {
	if err := a.sendLimit.check(d.userID); err != nil {
		return err
	}
	roomID, target, txnID := r.PathValue("roomId"), r.PathValue("eventId"), r.PathValue("txnId")
	var req struct {
		Reason string `json:"reason,omitempty"`
	}
	if err := httputil.ReadJSON(r, &req); err != nil {
		return err
	}
	if err := a.mayRedact(roomID, target, d.userID); err != nil {
		return err
	}
	rules, err := a.rs.RoomVersion(roomID)
	if errors.Is(err, roomserver.ErrUnknownRoom) {
		return httputil.Errorf(http.StatusNotFound, "M_NOT_FOUND", "unknown room")
	}
	if err != nil {
		return err
	}
	c := map[string]string{}
	if req.Reason != "" {
		c["reason"] = req.Reason
	}
	redacts := target
	if rules.RedactsInContent {
		c["redacts"], redacts = target, ""
	}
	content, _ := json.Marshal(c)
	eventID, err := a.idempotent(r.Context(), d, "redact/"+txnID, func(txn *roomserver.Txn) (string, error) {
		return a.sendTxn(r.Context(), txn, roomID, "m.room.redaction", d.userID, nil, content, redacts)
	})
	if err != nil {
		return err
	}
	httputil.WriteJSON(w, 200, map[string]string{"event_id": eventID})
	return nil
}

// idempotent runs send once per client transaction: (user, device,
// endpoint and transaction ID). The transaction travels with the event in
// the input log and the room server records it with the event, so a retry
// after a crash or a log outage finds the first event (here, or when the
// room server drops the retry's event).
func (a *API) idempotent(ctx context.Context, d *device, txnID string, send func(*roomserver.Txn) (string, error)) (string, error) {
	lock := a.roomLock("txn:" + d.token)
	lock.Lock()
	defer lock.Unlock()
	txn := roomserver.Txn{UserID: d.userID, DeviceID: d.deviceID, ID: txnID}
	eventID, found, err := a.rs.TxnEvent(ctx, txn)
	if err != nil || found {
		return eventID, err
	}
	return send(&txn)
}

// mayRedact checks that the user may redact the target: an event of the
// room that the user sent, or any event of it with the room's redact level.
func (a *API) mayRedact(roomID, target, userID string) error {
	p, err := a.rs.Event(target)
	if errors.Is(err, roomserver.ErrUnknownEvent) || (err == nil && p.RoomID() != roomID) {
		return httputil.Errorf(http.StatusNotFound, "M_NOT_FOUND", "no such event in this room")
	}
	if err != nil {
		return err
	}
	if p.Sender() == userID {
		return nil
	}
	state, err := a.rs.CurrentState(roomID)
	if err != nil {
		return err
	}
	if isPrivilegedCreator(state, userID) {
		return nil
	}
	ple := state.PowerLevels()
	creator := ""
	if c := state.Create(); c != nil {
		if cc, err := c.CreateContent(); err == nil {
			creator = cc.Creator
		}
	}
	pl := event.DefaultPowerLevels(creator)
	if ple != nil {
		if pl, err = ple.PowerLevels(); err != nil {
			return err
		}
	}
	if pl.UserLevel(userID) < pl.Redact {
		return httputil.Errorf(http.StatusForbidden, "M_FORBIDDEN", "redacting another user's event needs the redact power level")
	}
	return nil
}

// isPrivilegedCreator reports whether the room's version gives its creators
// unlimited power and the user is one of them.
func isPrivilegedCreator(state eventauth.StateMap, userID string) bool {
	c := state.Create()
	if c == nil {
		return false
	}
	cc, err := c.CreateContent()
	if err != nil || !c.Rules().PrivilegedCreators {
		return false
	}
	return c.Sender() == userID || slices.Contains(cc.AdditionalCreators, userID)
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
	stored := make([]syncapi.Stored, 0, len(state))
	for _, p := range state {
		stored = append(stored, syncapi.Stored{ID: p.EventID(), JSON: p.JSON()})
	}
	out, err := a.sync.ClientEvents(r.Context(), roomID, stored)
	if err != nil {
		return err
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
	if p == nil {
		return httputil.Errorf(http.StatusNotFound, "M_NOT_FOUND", "no such state event")
	}
	evs, err := a.sync.ClientEvents(r.Context(), roomID, []syncapi.Stored{{ID: p.EventID(), JSON: p.JSON()}})
	if err != nil {
		return err
	}
	content := gjson.GetBytes(evs[0], "content")
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(content.Raw))
	return nil
}

// getEvent serves one event of a room the user is or was in, redacted if
// it was redacted.
func (a *API) getEvent(w http.ResponseWriter, r *http.Request, d *device) error {
	roomID, eventID := r.PathValue("roomId"), r.PathValue("eventId")
	m, err := a.membership(roomID, d.userID)
	if err != nil {
		return err
	}
	if m != "join" && m != "leave" && m != "ban" {
		return httputil.Errorf(http.StatusForbidden, "M_FORBIDDEN", "you are not in this room")
	}
	p, err := a.rs.Event(eventID)
	if errors.Is(err, roomserver.ErrUnknownEvent) || (err == nil && p.RoomID() != roomID && p.Type() != "m.room.create") {
		return httputil.Errorf(http.StatusNotFound, "M_NOT_FOUND", "no such event in this room")
	}
	if err != nil {
		return err
	}
	evs, err := a.sync.ClientEvents(r.Context(), roomID, []syncapi.Stored{{ID: p.EventID(), JSON: p.JSON()}})
	if err != nil {
		return err
	}
	httputil.WriteJSON(w, 200, evs[0])
	return nil
}

func (a *API) putState(w http.ResponseWriter, r *http.Request, d *device) error {
	if err := a.sendLimit.check(d.userID); err != nil {
		return err
	}
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
	if strings.HasPrefix(roomID, "#") {
		alias, err := a.parseLocalAlias(roomID)
		if err != nil {
			return err
		}
		if roomID, err = a.resolveAlias(r.Context(), alias); err != nil {
			return err
		}
	} else if _, err := id.ParseRoomID(roomID); err != nil {
		return httputil.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "not a room ID or alias")
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
	since, err := syncapi.ParsePos(q.Get("since"))
	if err != nil {
		return httputil.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", err.Error())
	}
	var timeout time.Duration
	if t := q.Get("timeout"); t != "" {
		ms, err := strconv.ParseInt(t, 10, 64)
		if err != nil || ms < 0 {
			return httputil.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "timeout must be a non-negative integer of milliseconds")
		}
		timeout = time.Duration(min(ms, maxSyncTimeout.Milliseconds())) * time.Millisecond
	}
	setPresence := q.Get("set_presence")
	if setPresence != "" && !presenceStates[setPresence] {
		return httputil.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "set_presence must be online, offline or unavailable")
	}
	req := syncapi.Request{UserID: d.userID, DeviceID: d.deviceID, Since: since, Initial: q.Get("since") == "", Timeout: timeout, TimelineLimit: 20}
	if f := q.Get("filter"); f != "" {
		raw := []byte(f)
		if !strings.HasPrefix(f, "{") {
			stored, ok, err := a.storedFilter(r.Context(), d.userID, f)
			if err != nil {
				return err
			}
			if !ok {
				return httputil.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "unknown filter ID")
			}
			raw = stored
		}
		if req.Filter, err = syncapi.ParseFilter(raw); err != nil {
			return httputil.Errorf(http.StatusBadRequest, "M_BAD_JSON", err.Error())
		}
		if l := req.Filter.Timeline.Limit; l > 0 {
			req.TimelineLimit = min(l, 1000)
		}
	}
	a.touch(r.Context(), d.userID, setPresence)
	resp, err := a.sync.Sync(r.Context(), req)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	}
	if resp.OneTimeKeyCounts, resp.UnusedFallbackKeyTypes, err = a.keyCounts(r.Context(), d.userID, d.deviceID); err != nil {
		return err
	}
	httputil.WriteJSON(w, 200, resp)
	return nil
}
