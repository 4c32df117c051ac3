package federationapi

import (
	"net/http"
	"sort"
	"strconv"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/httputil"
	"github.com/tidwall/gjson"
)

func httpMissing(param string) error {
	return httputil.Errorf(http.StatusBadRequest, "M_MISSING_PARAM", "missing or invalid parameter "+param)
}

func (a *API) queryProfile(w http.ResponseWriter, r *http.Request, _ string) error {
	q := r.URL.Query()
	userID := q.Get("user_id")
	if userID == "" {
		return httpMissing("user_id")
	}
	if serverOf(userID) != a.serverName {
		return httputil.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "not a user of this server")
	}
	field := q.Get("field")
	if field != "" && field != "displayname" && field != "avatar_url" {
		return httputil.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "unknown profile field")
	}
	name, ok, err := a.profiles.Profile(r.Context(), userID)
	if err != nil {
		return err
	}
	if !ok {
		return notFound("unknown user")
	}
	resp := map[string]any{}
	if name != "" && (field == "" || field == "displayname") {
		resp["displayname"] = name
	}
	writeRaw(w, resp)
	return nil
}

// queryDirectory: this example has no room aliases.
func (a *API) queryDirectory(_ http.ResponseWriter, r *http.Request, _ string) error {
	if r.URL.Query().Get("room_alias") == "" {
		return httpMissing("room_alias")
	}
	return notFound("room alias not found")
}

// publicRooms lists the rooms we are in whose join rule is public.
func (a *API) publicRooms(w http.ResponseWriter, r *http.Request, _ string) error {
	limit := 0
	if r.Method == http.MethodGet {
		limit, _ = strconv.Atoi(r.URL.Query().Get("limit"))
	} else if body, err := readBody(r); err == nil {
		limit = int(gjson.GetBytes(body, "limit").Int())
	} else {
		return err
	}
	rooms, err := a.rs.Rooms()
	if err != nil {
		return err
	}
	type entry struct {
		RoomID        string `json:"room_id"`
		Joined        int    `json:"num_joined_members"`
		WorldReadable bool   `json:"world_readable"`
		GuestCanJoin  bool   `json:"guest_can_join"`
		Name          string `json:"name,omitempty"`
		Topic         string `json:"topic,omitempty"`
		JoinRule      string `json:"join_rule"`
	}
	chunk := []entry{}
	for _, roomID := range rooms {
		state, err := a.rs.CurrentState(roomID)
		if err != nil || !a.residentIn(state) {
			continue
		}
		jr := state.JoinRules()
		if jr == nil || gjson.GetBytes(jr.Content(), "join_rule").Str != "public" {
			continue
		}
		e := entry{RoomID: roomID, JoinRule: "public"}
		for _, m := range state.Members() {
			if m.Membership() == "join" {
				e.Joined++
			}
		}
		if hv := state.HistoryVisibility(); hv != nil {
			e.WorldReadable = gjson.GetBytes(hv.Content(), "history_visibility").Str == "world_readable"
		}
		for k, p := range state {
			switch {
			case k.Type == "m.room.name" && k.StateKey == "":
				e.Name = gjson.GetBytes(p.Content(), "name").Str
			case k.Type == "m.room.topic" && k.StateKey == "":
				e.Topic = gjson.GetBytes(p.Content(), "topic").Str
			}
		}
		chunk = append(chunk, e)
	}
	sort.SliceStable(chunk, func(i, j int) bool { return chunk[i].Joined > chunk[j].Joined })
	if limit > 0 && len(chunk) > limit {
		chunk = chunk[:limit]
	}
	writeRaw(w, map[string]any{"chunk": chunk, "total_room_count_estimate": len(chunk)})
	return nil
}

// userDevices: devices have no keys in this example; the list is empty.
func (a *API) userDevices(w http.ResponseWriter, r *http.Request, _ string) error {
	userID := r.PathValue("userId")
	if serverOf(userID) != a.serverName {
		return httputil.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "not a user of this server")
	}
	writeRaw(w, map[string]any{"user_id": userID, "stream_id": 0, "devices": []any{}})
	return nil
}

// keysQuery and keysClaim: no end-to-end keys in this example.
func (a *API) keysQuery(w http.ResponseWriter, _ *http.Request, _ string) error {
	writeRaw(w, map[string]any{"device_keys": map[string]any{}})
	return nil
}

func (a *API) keysClaim(w http.ResponseWriter, _ *http.Request, _ string) error {
	writeRaw(w, map[string]any{"one_time_keys": map[string]any{}})
	return nil
}
