package clientapi

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/httputil"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/roomserver"
	"github.com/gomatrixlib/gomatrixlib/id"
	"github.com/tidwall/gjson"
)

// Room aliases (this server's own only), the published room directory,
// the user directory, and the VoIP and third-party answers of a server
// without those features.

// parseLocalAlias checks an alias's grammar and that it is ours.
func (a *API) parseLocalAlias(alias string) error {
	if len(alias) > 255 || !utf8.ValidString(alias) || !strings.HasPrefix(alias, "#") {
		return invalidParam("not a room alias")
	}
	local, server, ok := strings.Cut(alias[1:], ":")
	if !ok || local == "" || strings.ContainsRune(local, 0) || server == "" {
		return invalidParam("not a room alias")
	}
	if server != a.serverName {
		return invalidParam("aliases of other servers are not managed here")
	}
	return nil
}

func (a *API) aliasRoom(ctx context.Context, alias string) (string, error) {
	var roomID string
	err := a.db.QueryRowContext(ctx, `SELECT room_id FROM cs_aliases WHERE alias = ?`, alias).Scan(&roomID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", notFound("unknown room alias")
	}
	return roomID, err
}

func (a *API) putAlias(w http.ResponseWriter, r *http.Request, d *device) error {
	alias := r.PathValue("roomAlias")
	if err := a.parseLocalAlias(alias); err != nil {
		return err
	}
	var req struct {
		RoomID string `json:"room_id"`
	}
	if err := httputil.ReadJSON(r, &req); err != nil {
		return err
	}
	if _, err := id.ParseRoomID(req.RoomID); err != nil {
		return invalidParam("room_id is not a room ID")
	}
	if err := a.requireJoined(req.RoomID, d.userID); err != nil {
		return err
	}
	return a.createAlias(r.Context(), w, alias, req.RoomID, d.userID)
}

func (a *API) createAlias(ctx context.Context, w http.ResponseWriter, alias, roomID, creator string) error {
	lock := a.roomLock("alias:" + alias)
	lock.Lock()
	defer lock.Unlock()
	if _, err := a.aliasRoom(ctx, alias); err == nil {
		return httputil.Errorf(http.StatusConflict, "M_UNKNOWN", "room alias already exists")
	}
	if _, err := a.db.ExecContext(ctx, `INSERT INTO cs_aliases (alias, room_id, creator) VALUES (?, ?, ?)`, alias, roomID, creator); err != nil {
		return err
	}
	if w != nil {
		httputil.WriteJSON(w, 200, map[string]any{})
	}
	return nil
}

func (a *API) getAlias(w http.ResponseWriter, r *http.Request) error {
	alias := r.PathValue("roomAlias")
	if err := a.parseLocalAlias(alias); err != nil {
		if strings.HasPrefix(alias, "#") && strings.Contains(alias, ":") && len(alias) <= 255 {
			return notFound("remote aliases are not resolved (no federation client)")
		}
		return err
	}
	roomID, err := a.aliasRoom(r.Context(), alias)
	if err != nil {
		return err
	}
	httputil.WriteJSON(w, 200, map[string]any{"room_id": roomID, "servers": []string{a.serverName}})
	return nil
}

// deleteAlias lets the alias's creator, or a member allowed to send
// m.room.canonical_alias, remove it.
func (a *API) deleteAlias(w http.ResponseWriter, r *http.Request, d *device) error {
	alias := r.PathValue("roomAlias")
	if err := a.parseLocalAlias(alias); err != nil {
		return err
	}
	var roomID, creator string
	err := a.db.QueryRowContext(r.Context(), `SELECT room_id, creator FROM cs_aliases WHERE alias = ?`, alias).Scan(&roomID, &creator)
	if errors.Is(err, sql.ErrNoRows) {
		return notFound("unknown room alias")
	}
	if err != nil {
		return err
	}
	if creator != d.userID && !a.canSendState(roomID, d.userID, "m.room.canonical_alias") {
		return forbidden("only the alias's creator or a room moderator may delete it")
	}
	if _, err := a.db.ExecContext(r.Context(), `DELETE FROM cs_aliases WHERE alias = ?`, alias); err != nil {
		return err
	}
	httputil.WriteJSON(w, 200, map[string]any{})
	return nil
}

// canSendState reports whether the user's power level reaches the level
// for the state event type.
func (a *API) canSendState(roomID, userID, evType string) bool {
	if m, err := a.membership(roomID, userID); err != nil || m != "join" {
		return false
	}
	pl, err := a.rs.CurrentStateEvent(roomID, "m.room.power_levels", "")
	if err != nil || pl == nil {
		return false
	}
	c := pl.Content()
	need := gjson.GetBytes(c, "state_default").Int()
	if !gjson.GetBytes(c, "state_default").Exists() {
		need = 50
	}
	if ev := gjson.GetBytes(c, "events."+gjson.Escape(evType)); ev.Exists() {
		need = ev.Int()
	}
	have := gjson.GetBytes(c, "users_default").Int()
	if u := gjson.GetBytes(c, "users."+gjson.Escape(userID)); u.Exists() {
		have = u.Int()
	} else if create, err := a.rs.CurrentStateEvent(roomID, "m.room.create", ""); err == nil && create != nil && create.Sender() == userID {
		// Room version 12 creators are not listed and outrank everyone.
		have = 1 << 53
	}
	return have >= need
}

func (a *API) roomAliases(w http.ResponseWriter, r *http.Request, d *device) error {
	roomID := r.PathValue("roomId")
	m, err := a.membership(roomID, d.userID)
	if err != nil {
		return err
	}
	if m != "join" {
		hv, err := a.rs.CurrentStateEvent(roomID, "m.room.history_visibility", "")
		if err != nil || hv == nil || gjson.GetBytes(hv.Content(), "history_visibility").Str != "world_readable" {
			return forbidden("you are not in this room")
		}
	}
	rows, err := a.db.QueryContext(r.Context(), `SELECT alias FROM cs_aliases WHERE room_id = ? ORDER BY alias`, roomID)
	if err != nil {
		return err
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var al string
		if err := rows.Scan(&al); err != nil {
			return err
		}
		out = append(out, al)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	httputil.WriteJSON(w, 200, map[string]any{"aliases": out})
	return nil
}

// joinByAlias wraps POST /join/{roomIdOrAlias}: one of this server's
// aliases is resolved to its room, then joined as a room ID.
func (a *API) joinByAlias(h authedHandler) authedHandler {
	return func(w http.ResponseWriter, r *http.Request, d *device) error {
		target := r.PathValue("roomId")
		if strings.HasPrefix(target, "#") {
			if err := a.parseLocalAlias(target); err != nil {
				return notFound("unknown room alias (remote aliases are not resolved)")
			}
			roomID, err := a.aliasRoom(r.Context(), target)
			if err != nil {
				return err
			}
			r.SetPathValue("roomId", roomID)
		}
		return h(w, r, d)
	}
}

// checkCanonicalAlias wraps the state PUT: the aliases an
// m.room.canonical_alias event adds must be well formed and (for ours)
// point at the room.
func (a *API) checkCanonicalAlias(h authedHandler) authedHandler {
	return func(w http.ResponseWriter, r *http.Request, d *device) error {
		if r.PathValue("eventType") != "m.room.canonical_alias" {
			return h(w, r, d)
		}
		body, err := readBodyAgain(r)
		if err != nil {
			return err
		}
		var c struct {
			Alias      *string  `json:"alias"`
			AltAliases []string `json:"alt_aliases"`
		}
		if json.Unmarshal(body, &c) != nil {
			return h(w, r, d) // the state handler reports the bad body
		}
		roomID := r.PathValue("roomId")
		old := map[string]bool{}
		if cur, err := a.rs.CurrentStateEvent(roomID, "m.room.canonical_alias", ""); err == nil && cur != nil {
			old[gjson.GetBytes(cur.Content(), "alias").Str] = true
			for _, x := range gjson.GetBytes(cur.Content(), "alt_aliases").Array() {
				old[x.Str] = true
			}
		}
		all := c.AltAliases
		if c.Alias != nil && *c.Alias != "" {
			all = append(all, *c.Alias)
		}
		for _, al := range all {
			if old[al] {
				continue
			}
			if !strings.HasPrefix(al, "#") || !strings.Contains(al, ":") || len(al) > 255 {
				return invalidParam("not a room alias: " + al)
			}
			if a.parseLocalAlias(al) != nil {
				continue // another server's alias: not checked
			}
			if got, err := a.aliasRoom(r.Context(), al); err != nil || got != roomID {
				return httputil.Errorf(http.StatusBadRequest, "M_BAD_ALIAS", "alias does not point to this room: "+al)
			}
		}
		return h(w, r, d)
	}
}

// createRoomDirectory wraps createRoom: visibility "public" publishes the
// room, room_alias_name creates the alias (checked before the room is
// created) and sets it as the canonical alias.
func (a *API) createRoomDirectory(h authedHandler) authedHandler {
	return func(w http.ResponseWriter, r *http.Request, d *device) error {
		body, err := readBodyAgain(r)
		if err != nil {
			return err
		}
		var req struct {
			Visibility    string `json:"visibility"`
			RoomAliasName string `json:"room_alias_name"`
		}
		_ = json.Unmarshal(body, &req)
		alias := ""
		if req.RoomAliasName != "" {
			alias = "#" + req.RoomAliasName + ":" + a.serverName
			if err := a.parseLocalAlias(alias); err != nil || strings.ContainsAny(req.RoomAliasName, ": ") {
				return httputil.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "room_alias_name is not a valid alias localpart")
			}
			if _, err := a.aliasRoom(r.Context(), alias); err == nil {
				return httputil.Errorf(http.StatusBadRequest, "M_ROOM_IN_USE", "room alias already taken")
			}
		}
		if req.Visibility != "" && req.Visibility != "public" && req.Visibility != "private" {
			return invalidParam("visibility must be public or private")
		}
		rec := newRecorder()
		if err := h(rec, r, d); err != nil {
			return err
		}
		roomID := gjson.GetBytes(rec.body.Bytes(), "room_id").Str
		if rec.status == 200 && roomID != "" {
			if req.Visibility == "public" {
				if err := a.setVisibility(r.Context(), roomID, "public"); err != nil {
					return err
				}
			}
			if alias != "" {
				if err := a.createAlias(r.Context(), nil, alias, roomID, d.userID); err != nil {
					return err
				}
				content, _ := json.Marshal(map[string]string{"alias": alias})
				empty := ""
				if _, err := a.send(r.Context(), roomID, "m.room.canonical_alias", d.userID, &empty, content, ""); err != nil {
					return err
				}
			}
		}
		rec.flush(w, rec.body.Bytes())
		return nil
	}
}

func (a *API) setVisibility(ctx context.Context, roomID, vis string) error {
	tx, err := a.db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`DELETE FROM cs_room_visibility WHERE room_id = ?`, roomID); err != nil {
		return err
	}
	if _, err := tx.Exec(`INSERT INTO cs_room_visibility (room_id, visibility) VALUES (?, ?)`, roomID, vis); err != nil {
		return err
	}
	return tx.Commit()
}

func (a *API) getVisibility(w http.ResponseWriter, r *http.Request) error {
	roomID := r.PathValue("roomId")
	if _, err := a.rs.RoomVersion(roomID); err != nil {
		if errors.Is(err, roomserver.ErrUnknownRoom) {
			return notFound("unknown room")
		}
		return err
	}
	vis := "private"
	err := a.db.QueryRowContext(r.Context(), `SELECT visibility FROM cs_room_visibility WHERE room_id = ?`, roomID).Scan(&vis)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	httputil.WriteJSON(w, 200, map[string]string{"visibility": vis})
	return nil
}

func (a *API) putVisibility(w http.ResponseWriter, r *http.Request, d *device) error {
	roomID := r.PathValue("roomId")
	var req struct {
		Visibility *string `json:"visibility"`
	}
	if err := httputil.ReadJSON(r, &req); err != nil {
		return err
	}
	vis := "public"
	if req.Visibility != nil {
		vis = *req.Visibility
	}
	if vis != "public" && vis != "private" {
		return invalidParam("visibility must be public or private")
	}
	if _, err := a.rs.RoomVersion(roomID); err != nil {
		if errors.Is(err, roomserver.ErrUnknownRoom) {
			return notFound("unknown room")
		}
		return err
	}
	if !a.canSendState(roomID, d.userID, "m.room.canonical_alias") {
		return forbidden("only room moderators may publish the room")
	}
	if err := a.setVisibility(r.Context(), roomID, vis); err != nil {
		return err
	}
	httputil.WriteJSON(w, 200, map[string]any{})
	return nil
}

type publicRoom struct {
	RoomID         string `json:"room_id"`
	NumJoined      int    `json:"num_joined_members"`
	WorldReadable  bool   `json:"world_readable"`
	GuestCanJoin   bool   `json:"guest_can_join"`
	Name           string `json:"name,omitempty"`
	Topic          string `json:"topic,omitempty"`
	AvatarURL      string `json:"avatar_url,omitempty"`
	CanonicalAlias string `json:"canonical_alias,omitempty"`
	JoinRule       string `json:"join_rule,omitempty"`
	RoomType       string `json:"room_type,omitempty"`
}

func (a *API) getPublicRooms(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit := 0
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 0 {
			return invalidParam("limit must be a non-negative integer")
		}
		limit = n
	}
	return a.publicRooms(r.Context(), w, q.Get("server"), limit, q.Get("since"), "", nil)
}

func (a *API) postPublicRooms(w http.ResponseWriter, r *http.Request, d *device) error {
	var req struct {
		Limit  *int   `json:"limit"`
		Since  string `json:"since"`
		Filter struct {
			Term      string             `json:"generic_search_term"`
			RoomTypes *[]json.RawMessage `json:"room_types"`
		} `json:"filter"`
	}
	if err := httputil.ReadJSON(r, &req); err != nil {
		return err
	}
	limit := 0
	if req.Limit != nil {
		if *req.Limit < 0 {
			return invalidParam("limit must not be negative")
		}
		limit = *req.Limit
	}
	var types map[string]bool
	if req.Filter.RoomTypes != nil {
		types = map[string]bool{}
		for _, t := range *req.Filter.RoomTypes {
			var s *string
			if json.Unmarshal(t, &s) != nil {
				return httputil.Errorf(http.StatusBadRequest, "M_BAD_JSON", "room_types holds strings or null")
			}
			if s == nil {
				types[""] = true
			} else {
				types[*s] = true
			}
		}
	}
	return a.publicRooms(r.Context(), w, r.URL.Query().Get("server"), limit, req.Since, req.Filter.Term, types)
}

// parseDirectoryToken reads a /publicRooms since token, "p<offset>"; ""
// is the first page.
func parseDirectoryToken(since string) (int, error) {
	if since == "" {
		return 0, nil
	}
	digits, ok := strings.CutPrefix(since, "p")
	if !ok || digits == "" || len(digits) > 9 || strings.Trim(digits, "0123456789") != "" {
		return 0, invalidParam("bad since token")
	}
	return strconv.Atoi(digits)
}

// publicRooms lists the published rooms, most joined members first, a
// page at a time; since is "p<offset>".
func (a *API) publicRooms(ctx context.Context, w http.ResponseWriter, server string, limit int, since, term string, types map[string]bool) error {
	if server != "" && server != a.serverName {
		return notFound("other servers' directories are not queried (no federation client)")
	}
	offset, err := parseDirectoryToken(since)
	if err != nil {
		return err
	}
	if limit <= 0 || limit > 500 {
		limit = 500
	}
	rows, err := a.db.QueryContext(ctx, `SELECT room_id FROM cs_room_visibility WHERE visibility = 'public'`)
	if err != nil {
		return err
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	// Member counts from the room server's current state: what a
	// completed join or leave has changed.
	joined := map[string]int{}
	for _, roomID := range ids {
		state, err := a.rs.CurrentState(roomID)
		if err != nil {
			return err
		}
		for k, p := range state {
			if k.Type == "m.room.member" && p.Membership() == "join" {
				joined[roomID]++
			}
		}
	}
	term = strings.ToLower(term)
	all := []publicRoom{}
	for _, roomID := range ids {
		pr, err := a.publicRoom(roomID)
		if err != nil {
			return err
		}
		pr.NumJoined = joined[roomID]
		if types != nil && !types[pr.RoomType] {
			continue
		}
		if term != "" && !strings.Contains(strings.ToLower(pr.Name+"\x00"+pr.Topic+"\x00"+pr.CanonicalAlias+"\x00"+pr.RoomID), term) {
			continue
		}
		all = append(all, pr)
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].NumJoined != all[j].NumJoined {
			return all[i].NumJoined > all[j].NumJoined
		}
		return all[i].RoomID < all[j].RoomID
	})
	resp := map[string]any{"total_room_count_estimate": len(all)}
	page := []publicRoom{}
	if offset < len(all) {
		page = all[offset:min(offset+limit, len(all))]
	}
	resp["chunk"] = page
	if offset+limit < len(all) {
		resp["next_batch"] = "p" + strconv.Itoa(offset+limit)
	}
	if offset > 0 {
		resp["prev_batch"] = "p" + strconv.Itoa(max(offset-limit, 0))
	}
	httputil.WriteJSON(w, 200, resp)
	return nil
}

func (a *API) publicRoom(roomID string) (publicRoom, error) {
	pr := publicRoom{RoomID: roomID}
	get := func(typ, path string) string {
		ev, err := a.rs.CurrentStateEvent(roomID, typ, "")
		if err != nil || ev == nil {
			return ""
		}
		return gjson.GetBytes(ev.Content(), path).Str
	}
	pr.Name = get("m.room.name", "name")
	pr.Topic = get("m.room.topic", "topic")
	pr.AvatarURL = get("m.room.avatar", "url")
	pr.CanonicalAlias = get("m.room.canonical_alias", "alias")
	pr.JoinRule = get("m.room.join_rules", "join_rule")
	pr.RoomType = get("m.room.create", "type")
	pr.WorldReadable = get("m.room.history_visibility", "history_visibility") == "world_readable"
	pr.GuestCanJoin = get("m.room.guest_access", "guest_access") == "can_join"
	return pr, nil
}

// searchUsers searches local users who share a room with the requester
// or are joined to a room with the public join rule, by user ID and
// display name, case-insensitively.
func (a *API) searchUsers(w http.ResponseWriter, r *http.Request, d *device) error {
	var req struct {
		SearchTerm *string `json:"search_term"`
		Limit      *int    `json:"limit"`
	}
	if err := httputil.ReadJSON(r, &req); err != nil {
		return err
	}
	if req.SearchTerm == nil {
		return httputil.Errorf(http.StatusBadRequest, "M_MISSING_PARAM", "search_term is required")
	}
	limit := 10
	if req.Limit != nil {
		if *req.Limit < 0 {
			return invalidParam("limit must not be negative")
		}
		limit = min(*req.Limit, 100)
	}
	term := strings.ToLower(*req.SearchTerm)
	joins, err := a.sync.AllJoined(r.Context())
	if err != nil {
		return err
	}
	mine := map[string]bool{}
	for _, j := range joins {
		if j.UserID == d.userID {
			mine[j.RoomID] = true
		}
	}
	publicRule := map[string]bool{}
	visible := map[string]bool{}
	for _, j := range joins {
		if visible[j.UserID] {
			continue
		}
		if mine[j.RoomID] {
			visible[j.UserID] = true
			continue
		}
		pub, seen := publicRule[j.RoomID]
		if !seen {
			jr, err := a.rs.CurrentStateEvent(j.RoomID, "m.room.join_rules", "")
			pub = err == nil && jr != nil && gjson.GetBytes(jr.Content(), "join_rule").Str == "public"
			publicRule[j.RoomID] = pub
		}
		if pub {
			visible[j.UserID] = true
		}
	}
	users := make([]string, 0, len(visible))
	for u := range visible {
		users = append(users, u)
	}
	sort.Strings(users)
	results := []map[string]string{}
	limited := false
	for _, u := range users {
		name, ok, err := a.displayName(r.Context(), u)
		if err != nil {
			return err
		}
		if !ok {
			continue // not a local account
		}
		if !strings.Contains(strings.ToLower(u), term) && !strings.Contains(strings.ToLower(name), term) {
			continue
		}
		if len(results) == limit {
			limited = true
			break
		}
		res := map[string]string{"user_id": u}
		if name != "" {
			res["display_name"] = name
		}
		results = append(results, res)
	}
	httputil.WriteJSON(w, 200, map[string]any{"results": results, "limited": limited})
	return nil
}
