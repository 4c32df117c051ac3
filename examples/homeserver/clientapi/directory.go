package clientapi

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/httputil"
	"github.com/gomatrixlib/gomatrixlib/id"
	"github.com/tidwall/gjson"
)

// Room aliases (this server's own), the published room directory and the
// user directory.

const directorySchema = `
CREATE TABLE IF NOT EXISTS cs_aliases (
	alias TEXT PRIMARY KEY, room_id TEXT NOT NULL, creator TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cs_room_visibility (
	room_id TEXT PRIMARY KEY, visibility TEXT NOT NULL);
`

// parseLocalAlias checks that the alias is well formed and this server's.
func (a *API) parseLocalAlias(s string) (string, error) {
	al, err := id.ParseRoomAlias(s)
	if err != nil {
		return "", httputil.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "not a room alias")
	}
	if al.Server().String() != a.serverName {
		return "", httputil.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "aliases of other servers are not managed here")
	}
	return al.String(), nil
}

// resolveAlias returns the room of a local alias.
func (a *API) resolveAlias(ctx context.Context, alias string) (string, error) {
	var roomID string
	err := a.db.QueryRowContext(ctx, `SELECT room_id FROM cs_aliases WHERE alias = ?`, alias).Scan(&roomID)
	if isNoRows(err) {
		return "", httputil.Errorf(http.StatusNotFound, "M_NOT_FOUND", "unknown room alias")
	}
	return roomID, err
}

func (a *API) putAlias(w http.ResponseWriter, r *http.Request, d *device) error {
	alias, err := a.parseLocalAlias(r.PathValue("roomAlias"))
	if err != nil {
		return err
	}
	var req struct {
		RoomID string `json:"room_id"`
	}
	if err := httputil.ReadJSON(r, &req); err != nil {
		return err
	}
	if _, err := id.ParseRoomID(req.RoomID); err != nil {
		return httputil.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "room_id is not a room ID")
	}
	if err := a.requireJoined(req.RoomID, d.userID); err != nil {
		return err
	}
	if err := a.createAlias(r.Context(), alias, req.RoomID, d.userID); err != nil {
		return err
	}
	httputil.WriteJSON(w, 200, map[string]any{})
	return nil
}

func (a *API) createAlias(ctx context.Context, alias, roomID, creator string) error {
	res, err := a.db.ExecContext(ctx, `INSERT INTO cs_aliases (alias, room_id, creator) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, alias, roomID, creator)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return httputil.Errorf(http.StatusConflict, "M_UNKNOWN", "room alias already exists")
	}
	return nil
}

func (a *API) getAlias(w http.ResponseWriter, r *http.Request) error {
	al, err := id.ParseRoomAlias(r.PathValue("roomAlias"))
	if err != nil {
		return httputil.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "not a room alias")
	}
	if al.Server().String() != a.serverName {
		return httputil.Errorf(http.StatusNotFound, "M_NOT_FOUND", "remote aliases are not resolved by this server")
	}
	roomID, err := a.resolveAlias(r.Context(), al.String())
	if err != nil {
		return err
	}
	httputil.WriteJSON(w, 200, map[string]any{"room_id": roomID, "servers": []string{a.serverName}})
	return nil
}

func (a *API) deleteAlias(w http.ResponseWriter, r *http.Request, d *device) error {
	alias, err := a.parseLocalAlias(r.PathValue("roomAlias"))
	if err != nil {
		return err
	}
	var roomID, creator string
	err = a.db.QueryRowContext(r.Context(), `SELECT room_id, creator FROM cs_aliases WHERE alias = ?`, alias).Scan(&roomID, &creator)
	if isNoRows(err) {
		return httputil.Errorf(http.StatusNotFound, "M_NOT_FOUND", "unknown room alias")
	}
	if err != nil {
		return err
	}
	if creator != d.userID {
		return httputil.Errorf(http.StatusForbidden, "M_FORBIDDEN", "only the alias's creator may delete it")
	}
	if _, err := a.db.ExecContext(r.Context(), `DELETE FROM cs_aliases WHERE alias = ?`, alias); err != nil {
		return err
	}
	httputil.WriteJSON(w, 200, map[string]any{})
	return nil
}

func (a *API) roomAliases(w http.ResponseWriter, r *http.Request, d *device) error {
	roomID := r.PathValue("roomId")
	if err := a.requireJoined(roomID, d.userID); err != nil {
		return err
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
	httputil.WriteJSON(w, 200, map[string]any{"aliases": out})
	return rows.Err()
}

func (a *API) getVisibility(w http.ResponseWriter, r *http.Request) error {
	roomID := r.PathValue("roomId")
	if _, err := a.rs.RoomVersion(roomID); err != nil {
		return httputil.Errorf(http.StatusNotFound, "M_NOT_FOUND", "unknown room")
	}
	httputil.WriteJSON(w, 200, map[string]string{"visibility": a.visibility(r.Context(), roomID)})
	return nil
}

func (a *API) visibility(ctx context.Context, roomID string) string {
	var v string
	if err := a.db.QueryRowContext(ctx, `SELECT visibility FROM cs_room_visibility WHERE room_id = ?`, roomID).Scan(&v); err != nil {
		return "private"
	}
	return v
}

func (a *API) putVisibility(w http.ResponseWriter, r *http.Request, d *device) error {
	roomID := r.PathValue("roomId")
	var req struct {
		Visibility string `json:"visibility"`
	}
	if err := httputil.ReadJSON(r, &req); err != nil {
		return err
	}
	if req.Visibility == "" {
		req.Visibility = "public"
	}
	if req.Visibility != "public" && req.Visibility != "private" {
		return httputil.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "visibility must be public or private")
	}
	if err := a.requireJoined(roomID, d.userID); err != nil {
		return err
	}
	if err := a.setVisibility(r.Context(), roomID, req.Visibility); err != nil {
		return err
	}
	httputil.WriteJSON(w, 200, map[string]any{})
	return nil
}

func (a *API) setVisibility(ctx context.Context, roomID, v string) error {
	_, err := a.db.ExecContext(ctx, `INSERT INTO cs_room_visibility (room_id, visibility) VALUES (?, ?)
		ON CONFLICT(room_id) DO UPDATE SET visibility = excluded.visibility`, roomID, v)
	return err
}

// publicRooms lists the published rooms, most joined members first, with
// an offset as the pagination token; POST may filter by a search term.
func (a *API) publicRoomsGet(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit := parseLimit(q.Get("limit"), 100)
	return a.publicRooms(w, r, limit, q.Get("since"), "")
}

func (a *API) publicRoomsPost(w http.ResponseWriter, r *http.Request, _ *device) error {
	var req struct {
		Limit  int    `json:"limit"`
		Since  string `json:"since"`
		Filter struct {
			Term string `json:"generic_search_term"`
		} `json:"filter"`
	}
	if err := httputil.ReadJSON(r, &req); err != nil {
		return err
	}
	if req.Limit <= 0 || req.Limit > 1000 {
		req.Limit = 100
	}
	return a.publicRooms(w, r, req.Limit, req.Since, req.Filter.Term)
}

func (a *API) publicRooms(w http.ResponseWriter, r *http.Request, limit int, since, term string) error {
	if s := r.URL.Query().Get("server"); s != "" && s != a.serverName {
		return httputil.Errorf(http.StatusNotFound, "M_NOT_FOUND", "other servers' directories are not queried")
	}
	offset := 0
	if since != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(since, "o"))
		if err != nil || n < 0 || !strings.HasPrefix(since, "o") {
			return httputil.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "bad since token")
		}
		offset = n
	}
	rows, err := a.db.QueryContext(r.Context(), `SELECT room_id FROM cs_room_visibility WHERE visibility = 'public'`)
	if err != nil {
		return err
	}
	var ids []string
	for rows.Next() {
		var rid string
		if err := rows.Scan(&rid); err != nil {
			rows.Close()
			return err
		}
		ids = append(ids, rid)
	}
	rows.Close()
	chunk := []map[string]any{}
	term = strings.ToLower(term)
	for _, rid := range ids {
		state, err := a.rs.CurrentState(rid)
		if err != nil {
			continue
		}
		entry := map[string]any{"room_id": rid, "num_joined_members": 0, "world_readable": false, "guest_can_join": false}
		joined := 0
		for k, p := range state {
			c := gjson.ParseBytes(p.Content())
			switch {
			case k.Type == "m.room.member" && p.Membership() == "join":
				joined++
			case k.Type == "m.room.name" && c.Get("name").Str != "":
				entry["name"] = c.Get("name").Str
			case k.Type == "m.room.topic" && c.Get("topic").Str != "":
				entry["topic"] = c.Get("topic").Str
			case k.Type == "m.room.canonical_alias" && c.Get("alias").Str != "":
				entry["canonical_alias"] = c.Get("alias").Str
			case k.Type == "m.room.avatar" && c.Get("url").Str != "":
				entry["avatar_url"] = c.Get("url").Str
			case k.Type == "m.room.join_rules":
				entry["join_rule"] = c.Get("join_rule").Str
			case k.Type == "m.room.history_visibility":
				entry["world_readable"] = c.Get("history_visibility").Str == "world_readable"
			case k.Type == "m.room.guest_access":
				entry["guest_can_join"] = c.Get("guest_access").Str == "can_join"
			case k.Type == "m.room.create" && c.Get("type").Str != "":
				entry["room_type"] = c.Get("type").Str
			}
		}
		entry["num_joined_members"] = joined
		if term != "" {
			hay := strings.ToLower(jsonText(entry["name"]) + " " + jsonText(entry["topic"]) + " " + jsonText(entry["canonical_alias"]))
			if !strings.Contains(hay, term) {
				continue
			}
		}
		chunk = append(chunk, entry)
	}
	sort.SliceStable(chunk, func(i, j int) bool {
		ni, nj := chunk[i]["num_joined_members"].(int), chunk[j]["num_joined_members"].(int)
		if ni != nj {
			return ni > nj
		}
		return chunk[i]["room_id"].(string) < chunk[j]["room_id"].(string)
	})
	total := len(chunk)
	resp := map[string]any{"total_room_count_estimate": total}
	if offset > total {
		offset = total
	}
	end := min(offset+limit, total)
	resp["chunk"] = chunk[offset:end]
	if end < total {
		resp["next_batch"] = "o" + strconv.Itoa(end)
	}
	if offset > 0 {
		resp["prev_batch"] = "o" + strconv.Itoa(max(offset-limit, 0))
	}
	httputil.WriteJSON(w, 200, resp)
	return nil
}

func jsonText(v any) string { s, _ := v.(string); return s }

// userDirectorySearch searches this server's users by user ID and display
// name, case-insensitively.
func (a *API) userDirectorySearch(w http.ResponseWriter, r *http.Request, _ *device) error {
	var req struct {
		SearchTerm *string `json:"search_term"`
		Limit      int     `json:"limit"`
	}
	if err := httputil.ReadJSON(r, &req); err != nil {
		return err
	}
	if req.SearchTerm == nil {
		return httputil.Errorf(http.StatusBadRequest, "M_MISSING_PARAM", "search_term is required")
	}
	if req.Limit <= 0 || req.Limit > 100 {
		req.Limit = 10
	}
	pattern := "%" + strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(strings.ToLower(*req.SearchTerm)) + "%"
	rows, err := a.db.QueryContext(r.Context(), `SELECT user_id, displayname FROM cs_accounts
		WHERE LOWER(user_id) LIKE ? ESCAPE '\' OR LOWER(displayname) LIKE ? ESCAPE '\' ORDER BY user_id LIMIT ?`, pattern, pattern, req.Limit+1)
	if err != nil {
		return err
	}
	defer rows.Close()
	results := []map[string]any{}
	for rows.Next() {
		var u, name string
		if err := rows.Scan(&u, &name); err != nil {
			return err
		}
		res := map[string]any{"user_id": u}
		if name != "" {
			res["display_name"] = name
		}
		results = append(results, res)
	}
	limited := len(results) > req.Limit
	if limited {
		results = results[:req.Limit]
	}
	httputil.WriteJSON(w, 200, map[string]any{"results": results, "limited": limited})
	return rows.Err()
}

// aliasContent is the content of a canonical alias event for an alias.
func aliasContent(alias string) json.RawMessage {
	b, _ := json.Marshal(map[string]string{"alias": alias})
	return b
}
