package clientapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/httputil"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/syncapi"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// End-to-end keys: device keys, one-time keys and fallback keys of local
// devices. Cross-signing keys and key backup are not implemented
// (/room_keys/version answers 404 M_NOT_FOUND: no backup).

func (a *API) keysUpload(w http.ResponseWriter, r *http.Request, d *device) error {
	var req struct {
		DeviceKeys   json.RawMessage            `json:"device_keys"`
		OneTimeKeys  map[string]json.RawMessage `json:"one_time_keys"`
		FallbackKeys map[string]json.RawMessage `json:"fallback_keys"`
	}
	if err := httputil.ReadJSON(r, &req); err != nil {
		return err
	}
	if err := checkKeyUpload(req.OneTimeKeys, req.FallbackKeys); err != nil { // keys_check.go
		return err
	}
	ctx := r.Context()
	changed := false
	if len(req.DeviceKeys) > 0 && string(req.DeviceKeys) != "null" {
		dk := gjson.ParseBytes(req.DeviceKeys)
		if !dk.IsObject() || dk.Get("user_id").Str != d.userID || dk.Get("device_id").Str != d.deviceID ||
			!dk.Get("keys").IsObject() || !dk.Get("algorithms").IsArray() {
			return httputil.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "device_keys must be this device's keys (user_id, device_id, algorithms, keys)")
		}
		var old string
		_ = a.db.QueryRowContext(ctx, `SELECT json FROM cs_device_keys WHERE user_id = ? AND device_id = ?`, d.userID, d.deviceID).Scan(&old)
		if old != string(req.DeviceKeys) {
			if _, err := a.db.ExecContext(ctx, `INSERT INTO cs_device_keys (user_id, device_id, json) VALUES (?, ?, ?)
				ON CONFLICT(user_id, device_id) DO UPDATE SET json = excluded.json`, d.userID, d.deviceID, string(req.DeviceKeys)); err != nil {
				return err
			}
			changed = true
		}
	}
	for keyID, key := range req.OneTimeKeys {
		alg, _, ok := strings.Cut(keyID, ":")
		if !ok || alg == "" {
			return httputil.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "one-time key IDs are algorithm:id")
		}
		if _, err := a.db.ExecContext(ctx, `INSERT INTO cs_one_time_keys (user_id, device_id, algorithm, key_id, json) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT DO NOTHING`, d.userID, d.deviceID, alg, keyID, string(key)); err != nil {
			return err
		}
	}
	for keyID, key := range req.FallbackKeys {
		alg, _, ok := strings.Cut(keyID, ":")
		if !ok || alg == "" {
			return httputil.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "fallback key IDs are algorithm:id")
		}
		if _, err := a.db.ExecContext(ctx, `INSERT INTO cs_fallback_keys (user_id, device_id, algorithm, key_id, json, used) VALUES (?, ?, ?, ?, ?, 0)
			ON CONFLICT(user_id, device_id, algorithm) DO UPDATE SET key_id = excluded.key_id, json = excluded.json, used = 0`,
			d.userID, d.deviceID, alg, keyID, string(key)); err != nil {
			return err
		}
	}
	if changed {
		if err := a.deviceListChanged(ctx, d.userID); err != nil {
			return err
		}
	}
	counts, _, err := a.keyCounts(ctx, d.userID, d.deviceID)
	if err != nil {
		return err
	}
	httputil.WriteJSON(w, 200, map[string]any{"one_time_key_counts": counts})
	return nil
}

// keyCounts returns the device's unclaimed one-time keys per algorithm and
// the algorithms of its unused fallback keys.
func (a *API) keyCounts(ctx context.Context, userID, deviceID string) (map[string]int, []string, error) {
	counts := map[string]int{}
	rows, err := a.db.QueryContext(ctx, `SELECT algorithm, COUNT(*) FROM cs_one_time_keys WHERE user_id = ? AND device_id = ? GROUP BY algorithm`, userID, deviceID)
	if err != nil {
		return nil, nil, err
	}
	for rows.Next() {
		var alg string
		var n int
		if err := rows.Scan(&alg, &n); err != nil {
			rows.Close()
			return nil, nil, err
		}
		counts[alg] = n
	}
	rows.Close()
	fallback := []string{}
	rows, err = a.db.QueryContext(ctx, `SELECT algorithm FROM cs_fallback_keys WHERE user_id = ? AND device_id = ? AND used = 0`, userID, deviceID)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var alg string
		if err := rows.Scan(&alg); err != nil {
			return nil, nil, err
		}
		fallback = append(fallback, alg)
	}
	return counts, fallback, rows.Err()
}

func (a *API) keysQuery(w http.ResponseWriter, r *http.Request, _ *device) error {
	var req struct {
		DeviceKeys map[string][]string `json:"device_keys"`
	}
	if err := httputil.ReadJSON(r, &req); err != nil {
		return err
	}
	if req.DeviceKeys == nil {
		return httputil.Errorf(http.StatusBadRequest, "M_MISSING_PARAM", "device_keys is required")
	}
	out := map[string]map[string]json.RawMessage{}
	for user, wanted := range req.DeviceKeys {
		rows, err := a.db.QueryContext(r.Context(), `SELECT k.device_id, k.json, i.display_name FROM cs_device_keys k
			LEFT JOIN cs_device_info i ON i.user_id = k.user_id AND i.device_id = k.device_id WHERE k.user_id = ?`, user)
		if err != nil {
			return err
		}
		devs := map[string]json.RawMessage{}
		for rows.Next() {
			var dev, raw string
			var name *string
			if err := rows.Scan(&dev, &raw, &name); err != nil {
				rows.Close()
				return err
			}
			if len(wanted) > 0 && !contains(wanted, dev) {
				continue
			}
			b := []byte(raw)
			if name != nil {
				b, _ = sjson.SetBytes(b, "unsigned.device_display_name", *name)
			}
			devs[dev] = b
		}
		rows.Close()
		out[user] = devs
	}
	httputil.WriteJSON(w, 200, map[string]any{"device_keys": out, "failures": map[string]any{}})
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (a *API) keysClaim(w http.ResponseWriter, r *http.Request, _ *device) error {
	var req struct {
		OneTimeKeys map[string]map[string]string `json:"one_time_keys"`
	}
	if err := httputil.ReadJSON(r, &req); err != nil {
		return err
	}
	if req.OneTimeKeys == nil {
		return httputil.Errorf(http.StatusBadRequest, "M_MISSING_PARAM", "one_time_keys is required")
	}
	out := map[string]map[string]map[string]json.RawMessage{}
	for user, devs := range req.OneTimeKeys {
		for dev, alg := range devs {
			keyID, key, err := a.claimKeyRetrying(r.Context(), user, dev, alg)
			if err != nil {
				return err
			}
			if keyID == "" {
				continue
			}
			if out[user] == nil {
				out[user] = map[string]map[string]json.RawMessage{}
			}
			out[user][dev] = map[string]json.RawMessage{keyID: key}
		}
	}
	httputil.WriteJSON(w, 200, map[string]any{"one_time_keys": out, "failures": map[string]any{}})
	return nil
}

// claimKey hands out the device's oldest one-time key of the algorithm,
// once, or else its fallback key (marked used).
func (a *API) claimKey(ctx context.Context, user, dev, alg string) (string, json.RawMessage, error) {
	tx, err := a.db.Begin()
	if err != nil {
		return "", nil, err
	}
	defer tx.Rollback()
	var rowID int64
	var keyID, raw string
	err = tx.QueryRow(`SELECT id, key_id, json FROM cs_one_time_keys WHERE user_id = ? AND device_id = ? AND algorithm = ? ORDER BY id LIMIT 1`, user, dev, alg).Scan(&rowID, &keyID, &raw)
	switch {
	case err == nil:
		res, err := tx.Exec(`DELETE FROM cs_one_time_keys WHERE id = ?`, rowID)
		if err != nil {
			return "", nil, err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return "", nil, errClaimRaced // keys_check.go: another claim took it
		}
	case isNoRows(err):
		err = tx.QueryRow(`SELECT key_id, json FROM cs_fallback_keys WHERE user_id = ? AND device_id = ? AND algorithm = ?`, user, dev, alg).Scan(&keyID, &raw)
		if isNoRows(err) {
			return "", nil, nil
		}
		if err != nil {
			return "", nil, err
		}
		if _, err := tx.Exec(`UPDATE cs_fallback_keys SET used = 1 WHERE user_id = ? AND device_id = ? AND algorithm = ?`, user, dev, alg); err != nil {
			return "", nil, err
		}
	default:
		return "", nil, err
	}
	return keyID, json.RawMessage(raw), tx.Commit()
}

func (a *API) keysChanges(w http.ResponseWriter, r *http.Request, d *device) error {
	q := r.URL.Query()
	from, err1 := syncapi.ParsePos(q.Get("from"))
	to, err2 := syncapi.ParsePos(q.Get("to"))
	if q.Get("from") == "" || q.Get("to") == "" || err1 != nil || err2 != nil {
		return httputil.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "from and to must be sync tokens")
	}
	changed, err := a.sync.DeviceListChanges(r.Context(), d.userID, from.DeviceLists, to.DeviceLists)
	if err != nil {
		return err
	}
	httputil.WriteJSON(w, 200, map[string]any{"changed": changed, "left": []string{}})
	return nil
}
