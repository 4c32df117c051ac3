package clientapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/httputil"
)

// Devices: a device exists while it has an access token (cs_devices);
// cs_device_info holds display names.

type deviceJSON struct {
	DeviceID    string `json:"device_id"`
	DisplayName string `json:"display_name,omitempty"`
	LastSeenIP  string `json:"last_seen_ip,omitempty"`
	LastSeenTS  int64  `json:"last_seen_ts,omitempty"`
}

func (a *API) listDevices(ctx context.Context, userID string) ([]deviceJSON, error) {
	rows, err := a.db.QueryContext(ctx, `SELECT DISTINCT d.device_id, COALESCE(i.display_name, '') FROM cs_devices d
		LEFT JOIN cs_device_info i ON i.user_id = d.user_id AND i.device_id = d.device_id WHERE d.user_id = ? ORDER BY d.device_id`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []deviceJSON{}
	for rows.Next() {
		var dj deviceJSON
		if err := rows.Scan(&dj.DeviceID, &dj.DisplayName); err != nil {
			return nil, err
		}
		a.ext.seenMu.Lock()
		s := a.ext.seen[[2]string{userID, dj.DeviceID}]
		a.ext.seenMu.Unlock()
		dj.LastSeenIP, dj.LastSeenTS = s.ip, s.ts
		out = append(out, dj)
	}
	return out, rows.Err()
}

func (a *API) findDevice(ctx context.Context, userID, deviceID string) (*deviceJSON, error) {
	all, err := a.listDevices(ctx, userID)
	if err != nil {
		return nil, err
	}
	for i := range all {
		if all[i].DeviceID == deviceID {
			return &all[i], nil
		}
	}
	return nil, notFound("unknown device")
}

func (a *API) getDevices(w http.ResponseWriter, r *http.Request, d *device) error {
	all, err := a.listDevices(r.Context(), d.userID)
	if err != nil {
		return err
	}
	httputil.WriteJSON(w, 200, map[string]any{"devices": all})
	return nil
}

func (a *API) getDevice(w http.ResponseWriter, r *http.Request, d *device) error {
	dev, err := a.findDevice(r.Context(), d.userID, r.PathValue("deviceId"))
	if err != nil {
		return err
	}
	httputil.WriteJSON(w, 200, dev)
	return nil
}

func (a *API) putDevice(w http.ResponseWriter, r *http.Request, d *device) error {
	var req struct {
		DisplayName *string `json:"display_name"`
	}
	if err := httputil.ReadJSON(r, &req); err != nil {
		return err
	}
	devID := r.PathValue("deviceId")
	if _, err := a.findDevice(r.Context(), d.userID, devID); err != nil {
		return err
	}
	if req.DisplayName != nil {
		if len(*req.DisplayName) > 256 {
			return httputil.Errorf(http.StatusBadRequest, "M_TOO_LARGE", "display name too long")
		}
		if err := a.setDeviceName(r.Context(), d.userID, devID, *req.DisplayName); err != nil {
			return err
		}
		if err := a.ext.keys.MarkChanged(r.Context(), d.userID); err != nil {
			return err
		}
	}
	httputil.WriteJSON(w, 200, map[string]any{})
	return nil
}

func (a *API) setDeviceName(ctx context.Context, userID, deviceID, name string) error {
	tx, err := a.db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`DELETE FROM cs_device_info WHERE user_id = ? AND device_id = ?`, userID, deviceID); err != nil {
		return err
	}
	if _, err := tx.Exec(`INSERT INTO cs_device_info (user_id, device_id, display_name) VALUES (?, ?, ?)`, userID, deviceID, name); err != nil {
		return err
	}
	return tx.Commit()
}

func (a *API) deleteDevice(w http.ResponseWriter, r *http.Request, d *device) error {
	var req struct {
		Auth json.RawMessage `json:"auth"`
	}
	if err := httputil.ReadJSON(r, &req); err != nil {
		return err
	}
	if done, err := a.ext.uia.check(r.Context(), a, w, d, req.Auth); !done || err != nil {
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
	if len(*req.Devices) > 1000 {
		return httputil.Errorf(http.StatusBadRequest, "M_TOO_LARGE", "too many devices")
	}
	if done, err := a.ext.uia.check(r.Context(), a, w, d, req.Auth); !done || err != nil {
		return err
	}
	if err := a.removeDevices(r.Context(), d.userID, *req.Devices); err != nil {
		return err
	}
	httputil.WriteJSON(w, 200, map[string]any{})
	return nil
}

// removeDevices logs the user's devices out and drops their keys; unknown
// devices are skipped (deleting a device twice succeeds).
func (a *API) removeDevices(ctx context.Context, userID string, ids []string) error {
	for _, id := range ids {
		res, err := a.db.ExecContext(ctx, `DELETE FROM cs_devices WHERE user_id = ? AND device_id = ?`, userID, id)
		if err != nil {
			return err
		}
		if _, err := a.db.ExecContext(ctx, `DELETE FROM cs_device_info WHERE user_id = ? AND device_id = ?`, userID, id); err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			if err := a.ext.keys.DeleteDevice(ctx, userID, id); err != nil {
				return err
			}
		}
	}
	return nil
}

// User-interactive auth for the device deletions: one flow, one stage,
// m.login.password for the requesting user. Sessions live in memory for
// ten minutes.

type uiaSessions struct {
	mu       sync.Mutex
	sessions map[string]uiaSession
}

type uiaSession struct {
	userID  string
	expires time.Time
}

func newUIASessions() *uiaSessions { return &uiaSessions{sessions: map[string]uiaSession{}} }

func (u *uiaSessions) challenge(w http.ResponseWriter, userID string, fail error) {
	u.mu.Lock()
	now := time.Now()
	for k, s := range u.sessions {
		if now.After(s.expires) {
			delete(u.sessions, k)
		}
	}
	session := randomHex(12)
	u.sessions[session] = uiaSession{userID: userID, expires: now.Add(10 * time.Minute)}
	u.mu.Unlock()
	body := map[string]any{"flows": []map[string]any{{"stages": []string{"m.login.password"}}}, "params": map[string]any{}, "session": session}
	var me *httputil.Error
	if errors.As(fail, &me) {
		body["errcode"], body["error"] = me.Errcode, me.Message
	}
	httputil.WriteJSON(w, http.StatusUnauthorized, body)
}

// check runs the auth: with no (or unusable) auth it writes the 401
// challenge and returns done=false; with a right password it returns
// done=true; bad input is an error.
func (u *uiaSessions) check(ctx context.Context, a *API, w http.ResponseWriter, d *device, raw json.RawMessage) (bool, error) {
	if len(raw) == 0 || string(raw) == "null" {
		u.challenge(w, d.userID, nil)
		return false, nil
	}
	var auth struct {
		Type       string `json:"type"`
		Session    string `json:"session"`
		Password   string `json:"password"`
		User       string `json:"user"`
		Identifier struct {
			Type string `json:"type"`
			User string `json:"user"`
		} `json:"identifier"`
	}
	if err := json.Unmarshal(raw, &auth); err != nil {
		return false, httputil.Errorf(http.StatusBadRequest, "M_BAD_JSON", "auth: "+err.Error())
	}
	u.mu.Lock()
	s, ok := u.sessions[auth.Session]
	if ok && (time.Now().After(s.expires) || s.userID != d.userID) {
		ok = false
	}
	u.mu.Unlock()
	if auth.Session != "" && !ok {
		u.challenge(w, d.userID, forbidden("unknown or expired session"))
		return false, nil
	}
	if auth.Type != "m.login.password" {
		u.challenge(w, d.userID, nil)
		return false, nil
	}
	user := auth.Identifier.User
	if user == "" {
		user = auth.User
	}
	if user != "" && user != d.userID && a.localUserID(user) != d.userID {
		u.challenge(w, d.userID, forbidden("the password must be the logged-in user's"))
		return false, nil
	}
	if err := a.checkPassword(ctx, d.userID, auth.Password); err != nil {
		var me *httputil.Error
		if errors.As(err, &me) && me.Status == http.StatusForbidden {
			u.challenge(w, d.userID, err)
			return false, nil
		}
		return false, err
	}
	if auth.Session != "" {
		u.mu.Lock()
		delete(u.sessions, auth.Session)
		u.mu.Unlock()
	}
	return true, nil
}
