// Package testclient is a small Matrix client-server API client for the
// homeserver's tests and load test.
package testclient

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client talks to one homeserver as one user.
type Client struct {
	Base   string // e.g. http://127.0.0.1:8008
	Prefix string // "/_matrix/client/v3" when empty
	Token  string
	UserID string
	HTTP   *http.Client
}

// Response is a decoded response.
type Response struct {
	Status int
	Body   map[string]any
	Raw    []byte
}

// Errcode returns the Matrix errcode of an error response.
func (r *Response) Errcode() string { s, _ := r.Body["errcode"].(string); return s }

// Do sends a request with a JSON body (nil for none, []byte for raw).
func (c *Client) Do(method, path string, body any) (*Response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(j)
	}
	prefix := c.Prefix
	if prefix == "" {
		prefix = "/_matrix/client/v3"
	}
	req, err := http.NewRequest(method, c.Base+prefix+path, rd)
	if err != nil {
		return nil, err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	out := &Response{Status: resp.StatusCode, Raw: raw}
	_ = json.Unmarshal(raw, &out.Body)
	return out, nil
}

// MustOK is Do that fails unless the status is 200.
func (c *Client) MustOK(method, path string, body any) (map[string]any, error) {
	r, err := c.Do(method, path, body)
	if err != nil {
		return nil, err
	}
	if r.Status != 200 {
		return nil, fmt.Errorf("%s %s: %d %s", method, path, r.Status, r.Raw)
	}
	return r.Body, nil
}

// Register creates an account and logs the client in as it.
func (c *Client) Register(user, password string) error {
	b, err := c.MustOK("POST", "/register", map[string]any{"username": user, "password": password, "auth": map[string]string{"type": "m.login.dummy"}})
	if err != nil {
		return err
	}
	c.Token, _ = b["access_token"].(string)
	c.UserID, _ = b["user_id"].(string)
	return nil
}

// Send sends an m.room.message and returns its event ID.
func (c *Client) Send(roomID, txnID, body string) (string, error) {
	b, err := c.MustOK("PUT", "/rooms/"+url.PathEscape(roomID)+"/send/m.room.message/"+url.PathEscape(txnID), map[string]string{"msgtype": "m.text", "body": body})
	if err != nil {
		return "", err
	}
	id, _ := b["event_id"].(string)
	return id, nil
}

// Sync calls /sync.
func (c *Client) Sync(since string, timeout time.Duration, limit int) (map[string]any, error) {
	q := url.Values{}
	if since != "" {
		q.Set("since", since)
	}
	q.Set("timeout", fmt.Sprint(timeout.Milliseconds()))
	if limit > 0 {
		q.Set("filter", fmt.Sprintf(`{"room":{"timeline":{"limit":%d}}}`, limit))
	}
	return c.MustOK("GET", "/sync?"+q.Encode(), nil)
}

// TimelineIDs returns the event IDs of a room's timeline in a sync
// response, with the given type ("" for all).
func TimelineIDs(sync map[string]any, roomID, evType string) []string {
	var out []string
	rooms, _ := sync["rooms"].(map[string]any)
	join, _ := rooms["join"].(map[string]any)
	room, _ := join[roomID].(map[string]any)
	tl, _ := room["timeline"].(map[string]any)
	evs, _ := tl["events"].([]any)
	for _, e := range evs {
		m, _ := e.(map[string]any)
		if evType == "" || m["type"] == evType {
			id, _ := m["event_id"].(string)
			out = append(out, id)
		}
	}
	return out
}

// CollectMessages syncs from since until it has seen want message events
// in the room (or the deadline passes) and returns their IDs in order.
func (c *Client) CollectMessages(roomID, since string, want int, deadline time.Duration) ([]string, string, error) {
	var ids []string
	end := time.Now().Add(deadline)
	for len(ids) < want && time.Now().Before(end) {
		s, err := c.Sync(since, 2*time.Second, 1000)
		if err != nil {
			return ids, since, err
		}
		ids = append(ids, TimelineIDs(s, roomID, "m.room.message")...)
		since, _ = s["next_batch"].(string)
	}
	return ids, since, nil
}

// EscapeRoom escapes a room ID for a path.
func EscapeRoom(roomID string) string { return strings.ReplaceAll(url.PathEscape(roomID), "%21", "!") }

// AllMessagesSince pages forward through /messages from the token and
// returns the IDs of the room's m.room.message events in order.
func (c *Client) AllMessagesSince(roomID, from string) ([]string, error) {
	var out []string
	for {
		q := url.Values{"dir": {"f"}, "limit": {"500"}, "from": {from}}
		b, err := c.MustOK("GET", "/rooms/"+url.PathEscape(roomID)+"/messages?"+q.Encode(), nil)
		if err != nil {
			return nil, err
		}
		chunk, _ := b["chunk"].([]any)
		for _, e := range chunk {
			m, _ := e.(map[string]any)
			if m["type"] == "m.room.message" {
				id, _ := m["event_id"].(string)
				out = append(out, id)
			}
		}
		end, more := b["end"].(string)
		if !more || len(chunk) == 0 {
			return out, nil
		}
		from = end
	}
}
