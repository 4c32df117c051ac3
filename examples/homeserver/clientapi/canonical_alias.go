package clientapi

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/httputil"
	"github.com/gomatrixlib/gomatrixlib/id"
	"github.com/tidwall/gjson"
)

// checkCanonicalAlias wraps the state PUT: the aliases an
// m.room.canonical_alias event adds (alias and alt_aliases not already in
// the current event) must be well formed (400 M_INVALID_PARAM) and, for
// this server's aliases, point at the room (400 M_BAD_ALIAS), as the spec
// asks of servers. Other servers' aliases are only checked for form (no
// federation client to resolve them).
func (a *API) checkCanonicalAlias(h authedHandler) authedHandler {
	return func(w http.ResponseWriter, r *http.Request, d *device) error {
		if r.PathValue("eventType") != "m.room.canonical_alias" {
			return h(w, r, d)
		}
		body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, httputil.MaxBodyBytes))
		if err != nil {
			return httputil.Errorf(http.StatusRequestEntityTooLarge, "M_TOO_LARGE", "request body too large")
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
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
		added := c.AltAliases
		if c.Alias != nil && *c.Alias != "" {
			added = append(added, *c.Alias)
		}
		for _, al := range added {
			if old[al] {
				continue
			}
			parsed, err := id.ParseRoomAlias(al)
			if err != nil {
				return httputil.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "not a room alias: "+al)
			}
			if parsed.Server().String() != a.serverName {
				continue
			}
			if got, err := a.resolveAlias(r.Context(), parsed.String()); err != nil || got != roomID {
				return httputil.Errorf(http.StatusBadRequest, "M_BAD_ALIAS", "alias does not point to this room: "+strings.ToValidUTF8(al, "?"))
			}
		}
		return h(w, r, d)
	}
}
