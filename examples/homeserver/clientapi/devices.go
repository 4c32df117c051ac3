package clientapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/httputil"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/logs"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/syncapi"
)

const deviceSchema = `
CREATE TABLE IF NOT EXISTS cs_device_info (
	user_id TEXT NOT NULL, device_id TEXT NOT NULL, display_name TEXT,
	last_seen_ts BIGINT NOT NULL DEFAULT 0, PRIMARY KEY (user_id, device_id));
CREATE TABLE IF NOT EXISTS cs_device_keys (
	user_id TEXT NOT NULL, device_id TEXT NOT NULL, json TEXT NOT NULL,
	PRIMARY KEY (user_id, device_id));
CREATE TABLE IF NOT EXISTS cs_one_time_keys (
	id INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL, device_id TEXT NOT NULL,
	algorithm TEXT NOT NULL, key_id TEXT NOT NULL, json TEXT NOT NULL,
	UNIQUE (user_id, device_id, key_id));
CREATE TABLE IF NOT EXISTS cs_fallback_keys (
	user_id TEXT NOT NULL, device_id TEXT NOT NULL, algorithm TEXT NOT NULL,
	key_id TEXT NOT NULL, json TEXT NOT NULL, used INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (user_id, device_id, algorithm));
`

type deviceJSON struct {
	DeviceID    string  `json:"device_id"`
	DisplayName *string `json:"display_name,omitempty"`
	LastSeenTS  int64   `json:"last_seen_ts,omitempty"`
}

func (a *API) listDevices(ctx context.Context, userID string) ([]deviceJSON, error) {
	rows, err := a.db.QueryContext(ctx, `SELECT DISTINCT d.device_id, i.display_name, COALESCE(i.last_seen_ts, 0) FROM cs_devices d
		LEFT JOIN cs_device_info i ON i.user_id = d.user_id AND i.device_id = d.device_id WHERE d.user_id = ? ORDER BY d.device_id`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []deviceJSON{}
	for rows.Next() {
		var d deviceJSON
		if err := rows.Scan(&d.DeviceID, &d.DisplayName, &d.LastSeenTS); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

func (a *API) getDevices(w http.ResponseWriter, r *http.Request, d *device) error {
	devs, err := a.listDevices(r.Context(), d.userID)
	if err != nil {
		return err
	}
	httputil.WriteJSON(w, 200, map[string]any{"devices": devs})
	return nil
}

func (a *API) findDevice(ctx context.Context, userID, deviceID string) (*deviceJSON, error) {
	devs, err := a.listDevices(ctx, userID)
	if err != nil {
		return nil, err
	}
	for _, dv := range devs {
		if dv.DeviceID == deviceID {
			return &dv, nil
		}
	}
	return nil, httputil.Errorf(http.StatusNotFound, "M_NOT_FOUND", "no such device")
}

func (a *API) getDevice(w http.ResponseWriter, r *http.Request, d *device) error {
	dv, err := a.findDevice(r.Context(), d.userID, r.PathValue("deviceId"))
	if err != nil {
		return err
	}
	httputil.WriteJSON(w, 200, dv)
	return nil
}

func (a *API) putDevice(w http.ResponseWriter, r *http.Request, d *device) error {
	var req struct {
		DisplayName *string `json:"display_name"`
	}
	if err := httputil.ReadJSON(r, &req); err != nil {
		return err
	}
	deviceID := r.PathValue("deviceId")
	if _, err := a.findDevice(r.Context(), d.userID, deviceID); err != nil {
		return err
	}
	if req.DisplayName != nil {
		if len(*req.DisplayName) > 256 {
			return httputil.Errorf(http.StatusBadRequest, "M_TOO_LARGE", "display name too long")
		}
		if err := a.setDeviceName(r.Context(), d.userID, deviceID, *req.DisplayName); err != nil {
			return err
		}
	}
	httputil.WriteJSON(w, 200, map[string]any{})
	return nil
}

func (a *API) setDeviceName(ctx context.Context, userID, deviceID, name string) error {
	_, err := a.db.ExecContext(ctx, `INSERT INTO cs_device_info (user_id, device_id, display_name, last_seen_ts) VALUES (?, ?, ?, ?)
		ON CONFLICT(user_id, device_id) DO UPDATE SET display_name = excluded.display_name`, userID, deviceID, name, time.Now().UnixMilli())
	return err
}

// uiaPassword runs user-interactive authentication with the password
// stage: without a valid auth object it answers 401 with the flows (and
// returns false).
func (a *API) uiaPassword(w http.ResponseWriter, r *http.Request, d *device, auth json.RawMessage) (bool, error) {
	var req struct {
		Type       string `json:"type"`
		Session    string `json:"session"`
		User       string `json:"user"`
		Password   string `json:"password"`
		Identifier struct {
			Type string `json:"type"`
			User string `json:"user"`
		} `json:"identifier"`
	}
	challenge := func(errcode, msg string) {
		body := map[string]any{"flows": []map[string]any{{"stages": []string{"m.login.password"}}}, "params": map[string]any{}, "session": randomHex(8)}
		if req.Session != "" {
			body["session"] = req.Session
		}
		if errcode != "" {
			body["errcode"], body["error"] = errcode, msg
		}
		httputil.WriteJSON(w, http.StatusUnauthorized, body)
	}
	if len(auth) == 0 || string(auth) == "null" {
		challenge("", "")
		return false, nil
	}
	if err := json.Unmarshal(auth, &req); err != nil {
		return false, httputil.Errorf(http.StatusBadRequest, "M_BAD_JSON", "auth must be an object")
	}
	if req.Type != "m.login.password" {
		challenge("", "")
		return false, nil
	}
	user := req.Identifier.User
	if user == "" {
		user = req.User
	}
	if !strings.HasPrefix(user, "@") {
		user = a.localUserID(user)
	}
	if user != d.userID || a.checkPassword(r.Context(), user, req.Password) != nil {
		challenge("M_FORBIDDEN", "invalid password")
		return false, nil
	}
	return true, nil
}

func (a *API) deleteDevice(w http.ResponseWriter, r *http.Request, d *device) error {
	var req struct {
		Auth json.RawMessage `json:"auth"`
	}
	if err := httputil.ReadJSON(r, &req); err != nil {
		return err
	}
	if ok, err := a.uiaPassword(w, r, d, req.Auth); !ok {
		return err
	}
	if err := a.removeDevices(r.Context(), d.userID, []string{r.PathValue("deviceId")}); err != nil {
		return err
	}
	httputil.WriteJSON(w, 200, map[string]any{})
	return nil
}

func (a *API) deleteDevices(w http.ResponseWriter, r *http.Request, d *device) error {
	var req struct {
		Devices *[]string       `json:"devices"`
		Auth    json.RawMessage `json:"auth"`
	}
	if err := httputil.ReadJSON(r, &req); err != nil {
		return err
	}
	if req.Devices == nil {
		return httputil.Errorf(http.StatusBadRequest, "M_MISSING_PARAM", "devices is required")
	}
	if ok, err := a.uiaPassword(w, r, d, req.Auth); !ok {
		return err
	}
	if err := a.removeDevices(r.Context(), d.userID, *req.Devices); err != nil {
		return err
	}
	httputil.WriteJSON(w, 200, map[string]any{})
	return nil
}

// removeDevices logs the devices out and drops their keys; users sharing
// a room with the owner learn of the change through device_lists.
func (a *API) removeDevices(ctx context.Context, userID string, deviceIDs []string) error {
	tx, err := a.db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, dev := range deviceIDs {
		for _, q := range []string{`DELETE FROM cs_devices WHERE user_id = ? AND device_id = ?`, `DELETE FROM cs_device_info WHERE user_id = ? AND device_id = ?`,
			`DELETE FROM cs_device_keys WHERE user_id = ? AND device_id = ?`, `DELETE FROM cs_one_time_keys WHERE user_id = ? AND device_id = ?`,
			`DELETE FROM cs_fallback_keys WHERE user_id = ? AND device_id = ?`} {
			if _, err := tx.Exec(q, userID, dev); err != nil {
				return err
			}
		}
	}
	err = tx.Commit()
	a.tokens.forget()
	if err != nil {
		return err
	}
	return a.deviceListChanged(ctx, userID)
}

// deviceListChanged appends to the device list log.
func (a *API) deviceListChanged(ctx context.Context, userID string) error {
	return a.publishAndWait(ctx, logs.DeviceLists, "", syncapi.DeviceListEntry{UserID: userID})
}
