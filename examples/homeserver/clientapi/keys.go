package clientapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/httputil"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/keyserver"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/syncapi"
	"github.com/gomatrixlib/gomatrixlib/id"
	"github.com/tidwall/sjson"
)

// End-to-end keys for local users. Remote users in /keys/query and
// /keys/claim are answered without their keys (no failure entry).

func keyErr(err error) error {
	var ke *keyserver.Error
	if errors.As(err, &ke) {
		status := http.StatusBadRequest
		if ke.Code == "M_TOO_LARGE" {
			status = http.StatusRequestEntityTooLarge
		}
		return httputil.Errorf(status, ke.Code, ke.Msg)
	}
	return err
}

func (a *API) keysUpload(w http.ResponseWriter, r *http.Request, d *device) error {
	var req struct {
		DeviceKeys   json.RawMessage            `json:"device_keys"`
		OneTimeKeys  map[string]json.RawMessage `json:"one_time_keys"`
		FallbackKeys map[string]json.RawMessage `json:"fallback_keys"`
		// The unstable name some clients still send.
		FallbackKeysMSC map[string]json.RawMessage `json:"org.matrix.msc2732.fallback_keys"`
	}
	if err := httputil.ReadJSON(r, &req); err != nil {
		return err
	}
	if req.FallbackKeys == nil {
		req.FallbackKeys = req.FallbackKeysMSC
	}
	counts, err := a.ext.keys.Upload(r.Context(), d.userID, d.deviceID, req.DeviceKeys, req.OneTimeKeys, req.FallbackKeys)
	if err != nil {
		return keyErr(err)
	}
	httputil.WriteJSON(w, 200, map[string]any{"one_time_key_counts": counts})
	return nil
}

func (a *API) keysQuery(w http.ResponseWriter, r *http.Request, d *device) error {
	var req struct {
		DeviceKeys map[string][]string `json:"device_keys"`
	}
	if err := httputil.ReadJSON(r, &req); err != nil {
		return err
	}
	if req.DeviceKeys == nil {
		return httputil.Errorf(http.StatusBadRequest, "M_MISSING_PARAM", "device_keys is required")
	}
	if len(req.DeviceKeys) > 1000 {
		return httputil.Errorf(http.StatusBadRequest, "M_TOO_LARGE", "too many users in one query")
	}
	local := map[string][]string{}
	for u, devs := range req.DeviceKeys {
		if uid, err := id.ParseUserID(u); err == nil && uid.Server().String() == a.serverName {
			local[u] = devs
		}
	}
	found, err := a.ext.keys.Query(r.Context(), local)
	if err != nil {
		return err
	}
	out := map[string]map[string]json.RawMessage{}
	for u := range req.DeviceKeys {
		out[u] = map[string]json.RawMessage{}
	}
	for u, devs := range found {
		// Only devices that still exist, with their display names.
		live, err := a.listDevices(r.Context(), u)
		if err != nil {
			return err
		}
		names := map[string]string{}
		for _, l := range live {
			names[l.DeviceID] = l.DisplayName
		}
		for dev, js := range devs {
			name, ok := names[dev]
			if !ok {
				continue
			}
			if name != "" {
				if withName, err := sjson.SetBytes(js, "unsigned.device_display_name", name); err == nil {
					js = withName
				}
			}
			out[u][dev] = js
		}
	}
	httputil.WriteJSON(w, 200, map[string]any{"device_keys": out, "failures": map[string]any{}})
	return nil
}

func (a *API) keysClaim(w http.ResponseWriter, r *http.Request, d *device) error {
	var req struct {
		OneTimeKeys map[string]map[string]string `json:"one_time_keys"`
	}
	if err := httputil.ReadJSON(r, &req); err != nil {
		return err
	}
	if req.OneTimeKeys == nil {
		return httputil.Errorf(http.StatusBadRequest, "M_MISSING_PARAM", "one_time_keys is required")
	}
	n := 0
	local := map[string]map[string]string{}
	for u, devs := range req.OneTimeKeys {
		n += len(devs)
		if uid, err := id.ParseUserID(u); err == nil && uid.Server().String() == a.serverName {
			local[u] = devs
		}
	}
	if n > 1000 {
		return httputil.Errorf(http.StatusBadRequest, "M_TOO_LARGE", "too many devices in one claim")
	}
	keys, err := a.ext.keys.Claim(r.Context(), local)
	if err != nil {
		return err
	}
	httputil.WriteJSON(w, 200, map[string]any{"one_time_keys": keys, "failures": map[string]any{}})
	return nil
}

func (a *API) keysChanges(w http.ResponseWriter, r *http.Request, d *device) error {
	q := r.URL.Query()
	fromTok, toTok := q.Get("from"), q.Get("to")
	if fromTok == "" || toTok == "" {
		return httputil.Errorf(http.StatusBadRequest, "M_MISSING_PARAM", "from and to are required")
	}
	fromBase, fromK, err := splitKeyPos(fromTok)
	if err != nil {
		return invalidParam(err.Error())
	}
	toBase, toK, err := splitKeyPos(toTok)
	if err != nil {
		return invalidParam(err.Error())
	}
	fromEv, err1 := syncapi.ParseToken(fromBase)
	toEv, err2 := syncapi.ParseToken(toBase)
	if err1 != nil || err2 != nil {
		return invalidParam("from and to must be sync tokens")
	}
	keyChanged, err := a.ext.keys.ChangedBetween(r.Context(), fromK, max(toK, fromK))
	if err != nil {
		return err
	}
	changed, left, err := a.sync.DeviceListChanges(r.Context(), d.userID, max(fromEv, 1), max(toEv, fromEv), keyChanged)
	if err != nil {
		return err
	}
	httputil.WriteJSON(w, 200, map[string]any{"changed": changed, "left": left})
	return nil
}

// noKeyBackup answers the key backup version queries: no backup exists
// (server-side key backup is not implemented).
func (a *API) noKeyBackup(w http.ResponseWriter, _ *http.Request, _ *device) error {
	return httputil.Errorf(http.StatusNotFound, "M_NOT_FOUND", "No current backup version")
}

// The device list stream has its own position, carried in every sync
// token after the sync reader's own part as ".k<pos>". The wrappers below
// split it off before the sync reader and /messages read the token, and
// put it back on next_batch; the rest of the token is the reader's.

func splitKeyPos(tok string) (base string, pos int64, err error) {
	i := strings.LastIndex(tok, ".k")
	if i < 0 {
		return tok, 0, nil
	}
	pos, err = strconv.ParseInt(tok[i+2:], 10, 64)
	if err != nil || pos < 0 {
		return "", 0, errors.New("bad token")
	}
	return tok[:i], pos, nil
}

// stripKeyPos lets /messages take sync tokens.
func (a *API) stripKeyPos(h authedHandler) authedHandler {
	return func(w http.ResponseWriter, r *http.Request, d *device) error {
		q := r.URL.Query()
		for _, p := range []string{"from", "to"} {
			if v := q.Get(p); v != "" {
				base, _, err := splitKeyPos(v)
				if err != nil {
					return invalidParam("bad " + p + " token")
				}
				q.Set(p, base)
			}
		}
		r.URL.RawQuery = q.Encode()
		return h(w, r, d)
	}
}

// syncWithKeys adds device_lists, device_one_time_keys_count and
// device_unused_fallback_key_types to /sync. A device list change that is
// already waiting turns a long-poll into an immediate answer; one that
// arrives during a long-poll is delivered by the next sync.
func (a *API) syncWithKeys(h authedHandler) authedHandler {
	return func(w http.ResponseWriter, r *http.Request, d *device) error {
		q := r.URL.Query()
		base, sinceK, err := splitKeyPos(q.Get("since"))
		if err != nil {
			return invalidParam("bad since token")
		}
		latestK, err := a.ext.keys.Latest(r.Context())
		if err != nil {
			return err
		}
		sinceK = min(sinceK, latestK)
		incremental := base != ""
		var keyChanged []string
		if incremental {
			if keyChanged, err = a.ext.keys.ChangedBetween(r.Context(), sinceK, latestK); err != nil {
				return err
			}
			if len(keyChanged) > 0 {
				q.Set("timeout", "0")
			}
		}
		if base != "" {
			q.Set("since", base)
		} else {
			q.Del("since")
		}
		r.URL.RawQuery = q.Encode()
		rec := newRecorder()
		if err := h(rec, r, d); err != nil {
			return err
		}
		body := rec.body.Bytes()
		if rec.status != 200 {
			rec.flush(w, body)
			return nil
		}
		var head struct {
			NextBatch string `json:"next_batch"`
		}
		if err := json.Unmarshal(body, &head); err != nil {
			return err
		}
		nextEv, err := syncapi.ParseToken(head.NextBatch)
		if err != nil {
			return err
		}
		changed, left := []string{}, []string{}
		if incremental {
			sinceEv, _ := syncapi.ParseToken(base)
			if changed, left, err = a.sync.DeviceListChanges(r.Context(), d.userID, max(sinceEv, 1), nextEv, keyChanged); err != nil {
				return err
			}
		}
		counts, unused, err := a.ext.keys.Counts(r.Context(), d.userID, d.deviceID)
		if err != nil {
			return err
		}
		set := func(path string, v any) {
			if err == nil {
				body, err = sjson.SetBytes(body, path, v)
			}
		}
		set("next_batch", head.NextBatch+".k"+strconv.FormatInt(latestK, 10))
		set("device_lists", map[string][]string{"changed": changed, "left": left})
		set("device_one_time_keys_count", counts)
		set("device_unused_fallback_key_types", unused)
		if err != nil {
			return err
		}
		rec.header.Del("Content-Length")
		rec.flush(w, body)
		return nil
	}
}
