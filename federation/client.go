package federation

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/gomatrixlib/gomatrixlib/serverdiscovery"
	"github.com/gomatrixlib/gomatrixlib/signing"
)

// DefaultMaxResponseBytes bounds a response body read by [Client].
const DefaultMaxResponseBytes = 16 << 20

// Error is a Matrix error response from a remote server.
type Error struct {
	Status  int
	Errcode string
	Message string
}

// Error describes the remote error.
func (e *Error) Error() string {
	return fmt.Sprintf("federation: remote error %d %s: %s", e.Status, e.Errcode, e.Message)
}

// ErrResponseTooLarge is returned when a response exceeds the bound.
var ErrResponseTooLarge = errors.New("federation: response too large")

// Client sends signed federation requests. Set the fields before use.
type Client struct {
	// ServerName is our server name (the origin).
	ServerName string
	// Key signs requests.
	Key *signing.Key
	// HTTPClient sends requests. Its transport must understand Matrix
	// server names as URL hosts. Nil: a client over a
	// serverdiscovery.Transport with Timeout.
	HTTPClient *http.Client
	// Timeout per request when HTTPClient is nil. Zero: 60 s.
	Timeout time.Duration
	// MaxResponseBytes bounds responses. Zero: DefaultMaxResponseBytes.
	MaxResponseBytes int64

	once sync.Once
	hc   *http.Client
}

func (c *Client) client() *http.Client {
	c.once.Do(func() {
		c.hc = c.HTTPClient
		if c.hc == nil {
			t := c.Timeout
			if t <= 0 {
				t = 60 * time.Second
			}
			c.hc = &http.Client{Transport: &serverdiscovery.Transport{}, Timeout: t}
		}
	})
	return c.hc
}

// Do sends a signed request to destination. body, if not nil, is sent as
// JSON (a []byte or json.RawMessage is sent as is); out, if not nil,
// receives the JSON response. Non-2xx responses return an *Error.
func (c *Client) Do(ctx context.Context, destination, method, path string, query url.Values, body, out any) error {
	var content []byte
	if body != nil {
		switch b := body.(type) {
		case []byte:
			content = b
		case json.RawMessage:
			content = b
		default:
			var err error
			if content, err = json.Marshal(b); err != nil {
				return err
			}
		}
	}
	uri := path
	if len(query) > 0 {
		uri += "?" + query.Encode()
	}
	auth, err := SignRequest(c.ServerName, destination, c.Key.KeyID(), c.Key.PrivateKey(), method, uri, content)
	if err != nil {
		return err
	}
	u := &url.URL{Scheme: "matrix-federation", Host: destination}
	full, err := u.Parse(uri)
	if err != nil {
		return err
	}
	var rd io.Reader
	if content != nil {
		rd = bytes.NewReader(content)
	}
	req, err := http.NewRequestWithContext(ctx, method, full.String(), rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", auth)
	if content != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.client().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	max := c.MaxResponseBytes
	if max <= 0 {
		max = DefaultMaxResponseBytes
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return err
	}
	if int64(len(raw)) > max {
		return ErrResponseTooLarge
	}
	if resp.StatusCode/100 != 2 {
		e := &Error{Status: resp.StatusCode}
		var body struct {
			Errcode string `json:"errcode"`
			Error   string `json:"error"`
		}
		if json.Unmarshal(raw, &body) == nil {
			e.Errcode, e.Message = body.Errcode, body.Error
		}
		return e
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("federation: decoding response of %s %s: %w", method, path, err)
		}
	}
	return nil
}

// Version is the response of GET /_matrix/federation/v1/version.
type Version struct {
	Server struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	} `json:"server"`
}

// Version asks the server for its implementation name and version.
func (c *Client) Version(ctx context.Context, destination string) (*Version, error) {
	var v Version
	return &v, c.Do(ctx, destination, "GET", "/_matrix/federation/v1/version", nil, nil, &v)
}

// Transaction is the body of PUT /_matrix/federation/v1/send/{txnId}.
type Transaction struct {
	Origin         string            `json:"origin"`
	OriginServerTS int64             `json:"origin_server_ts"`
	PDUs           []json.RawMessage `json:"pdus"`
	EDUs           []json.RawMessage `json:"edus,omitempty"`
}

// SendTransaction sends PDUs and EDUs and returns the per-PDU results.
func (c *Client) SendTransaction(ctx context.Context, destination, txnID string, txn Transaction) (map[string]json.RawMessage, error) {
	if txn.PDUs == nil {
		txn.PDUs = []json.RawMessage{}
	}
	var out struct {
		PDUs map[string]json.RawMessage `json:"pdus"`
	}
	err := c.Do(ctx, destination, "PUT", "/_matrix/federation/v1/send/"+url.PathEscape(txnID), nil, txn, &out)
	return out.PDUs, err
}

func versions(vs []string) url.Values {
	q := url.Values{}
	for _, v := range vs {
		q.Add("ver", v)
	}
	return q
}

// MakeJoin asks for a join event template; supported lists our room versions.
func (c *Client) MakeJoin(ctx context.Context, destination, roomID, userID string, supported []string) (json.RawMessage, error) {
	var out json.RawMessage
	return out, c.Do(ctx, destination, "GET", "/_matrix/federation/v1/make_join/"+url.PathEscape(roomID)+"/"+url.PathEscape(userID), versions(supported), nil, &out)
}

// SendJoin submits a signed join event (v2 API).
func (c *Client) SendJoin(ctx context.Context, destination, roomID, eventID string, ev json.RawMessage) (json.RawMessage, error) {
	var out json.RawMessage
	return out, c.Do(ctx, destination, "PUT", "/_matrix/federation/v2/send_join/"+url.PathEscape(roomID)+"/"+url.PathEscape(eventID), nil, ev, &out)
}

// MakeLeave asks for a leave event template.
func (c *Client) MakeLeave(ctx context.Context, destination, roomID, userID string) (json.RawMessage, error) {
	var out json.RawMessage
	return out, c.Do(ctx, destination, "GET", "/_matrix/federation/v1/make_leave/"+url.PathEscape(roomID)+"/"+url.PathEscape(userID), nil, nil, &out)
}

// SendLeave submits a signed leave event (v2 API).
func (c *Client) SendLeave(ctx context.Context, destination, roomID, eventID string, ev json.RawMessage) error {
	return c.Do(ctx, destination, "PUT", "/_matrix/federation/v2/send_leave/"+url.PathEscape(roomID)+"/"+url.PathEscape(eventID), nil, ev, nil)
}

// MakeKnock asks for a knock event template.
func (c *Client) MakeKnock(ctx context.Context, destination, roomID, userID string, supported []string) (json.RawMessage, error) {
	var out json.RawMessage
	return out, c.Do(ctx, destination, "GET", "/_matrix/federation/v1/make_knock/"+url.PathEscape(roomID)+"/"+url.PathEscape(userID), versions(supported), nil, &out)
}

// SendKnock submits a signed knock event.
func (c *Client) SendKnock(ctx context.Context, destination, roomID, eventID string, ev json.RawMessage) (json.RawMessage, error) {
	var out json.RawMessage
	return out, c.Do(ctx, destination, "PUT", "/_matrix/federation/v1/send_knock/"+url.PathEscape(roomID)+"/"+url.PathEscape(eventID), nil, ev, &out)
}

// Invite sends an invite event for the remote server to sign (v2 API).
func (c *Client) Invite(ctx context.Context, destination, roomID, eventID, roomVersion string, ev json.RawMessage, inviteRoomState []json.RawMessage) (json.RawMessage, error) {
	if inviteRoomState == nil {
		inviteRoomState = []json.RawMessage{}
	}
	body := map[string]any{"event": ev, "room_version": roomVersion, "invite_room_state": inviteRoomState}
	var out struct {
		Event json.RawMessage `json:"event"`
	}
	err := c.Do(ctx, destination, "PUT", "/_matrix/federation/v2/invite/"+url.PathEscape(roomID)+"/"+url.PathEscape(eventID), nil, body, &out)
	return out.Event, err
}

// GetEvent fetches one event (as a transaction with one PDU).
func (c *Client) GetEvent(ctx context.Context, destination, eventID string) (json.RawMessage, error) {
	var out Transaction
	if err := c.Do(ctx, destination, "GET", "/_matrix/federation/v1/event/"+url.PathEscape(eventID), nil, nil, &out); err != nil {
		return nil, err
	}
	if len(out.PDUs) != 1 {
		return nil, fmt.Errorf("federation: /event returned %d PDUs", len(out.PDUs))
	}
	return out.PDUs[0], nil
}

// State fetches the room state at an event.
func (c *Client) State(ctx context.Context, destination, roomID, eventID string) (json.RawMessage, error) {
	var out json.RawMessage
	return out, c.Do(ctx, destination, "GET", "/_matrix/federation/v1/state/"+url.PathEscape(roomID), url.Values{"event_id": {eventID}}, nil, &out)
}

// StateIDs fetches the IDs of the room state and auth chain at an event.
func (c *Client) StateIDs(ctx context.Context, destination, roomID, eventID string) (json.RawMessage, error) {
	var out json.RawMessage
	return out, c.Do(ctx, destination, "GET", "/_matrix/federation/v1/state_ids/"+url.PathEscape(roomID), url.Values{"event_id": {eventID}}, nil, &out)
}

// Backfill fetches up to limit events before the given ones.
func (c *Client) Backfill(ctx context.Context, destination, roomID string, from []string, limit int) (json.RawMessage, error) {
	q := url.Values{"v": from, "limit": {fmt.Sprint(limit)}}
	var out json.RawMessage
	return out, c.Do(ctx, destination, "GET", "/_matrix/federation/v1/backfill/"+url.PathEscape(roomID), q, nil, &out)
}

// GetMissingEvents fills a gap between earliest and latest events.
func (c *Client) GetMissingEvents(ctx context.Context, destination, roomID string, earliest, latest []string, limit int) (json.RawMessage, error) {
	body := map[string]any{"earliest_events": earliest, "latest_events": latest, "limit": limit}
	var out json.RawMessage
	return out, c.Do(ctx, destination, "POST", "/_matrix/federation/v1/get_missing_events/"+url.PathEscape(roomID), nil, body, &out)
}

// QueryProfile asks for a user's profile (field "" for all fields).
func (c *Client) QueryProfile(ctx context.Context, destination, userID, field string) (json.RawMessage, error) {
	q := url.Values{"user_id": {userID}}
	if field != "" {
		q.Set("field", field)
	}
	var out json.RawMessage
	return out, c.Do(ctx, destination, "GET", "/_matrix/federation/v1/query/profile", q, nil, &out)
}

// QueryDirectory resolves a room alias.
func (c *Client) QueryDirectory(ctx context.Context, destination, alias string) (json.RawMessage, error) {
	var out json.RawMessage
	return out, c.Do(ctx, destination, "GET", "/_matrix/federation/v1/query/directory", url.Values{"room_alias": {alias}}, nil, &out)
}

// PublicRooms lists the server's public rooms.
func (c *Client) PublicRooms(ctx context.Context, destination string, limit int, since string) (json.RawMessage, error) {
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", fmt.Sprint(limit))
	}
	if since != "" {
		q.Set("since", since)
	}
	var out json.RawMessage
	return out, c.Do(ctx, destination, "GET", "/_matrix/federation/v1/publicRooms", q, nil, &out)
}

// UserDevices lists a user's devices.
func (c *Client) UserDevices(ctx context.Context, destination, userID string) (json.RawMessage, error) {
	var out json.RawMessage
	return out, c.Do(ctx, destination, "GET", "/_matrix/federation/v1/user/devices/"+url.PathEscape(userID), nil, nil, &out)
}

// QueryKeys asks for device keys: device_keys maps user IDs to device IDs.
func (c *Client) QueryKeys(ctx context.Context, destination string, deviceKeys map[string][]string) (json.RawMessage, error) {
	var out json.RawMessage
	return out, c.Do(ctx, destination, "POST", "/_matrix/federation/v1/user/keys/query", nil, map[string]any{"device_keys": deviceKeys}, &out)
}

// ClaimKeys claims one-time keys: user -> device -> algorithm.
func (c *Client) ClaimKeys(ctx context.Context, destination string, oneTimeKeys map[string]map[string]string) (json.RawMessage, error) {
	var out json.RawMessage
	return out, c.Do(ctx, destination, "POST", "/_matrix/federation/v1/user/keys/claim", nil, map[string]any{"one_time_keys": oneTimeKeys}, &out)
}

// Backoff keeps retry state per destination: after a failure a
// destination is not tried again until its delay passes, the delay
// doubling from Min up to Max; a success resets it. The zero value uses 5 s
// and 1 h. Safe for concurrent use.
type Backoff struct {
	Min, Max time.Duration
	Now      func() time.Time

	mu    sync.Mutex
	state map[string]backoffState
}

type backoffState struct {
	delay time.Duration
	until time.Time
}

// ErrBackingOff is returned by Retry while a destination is backed off.
var ErrBackingOff = errors.New("federation: destination is backing off")

func (b *Backoff) now() time.Time {
	if b.Now != nil {
		return b.Now()
	}
	return time.Now()
}

// Ready reports whether destination may be tried now, and if not, when.
func (b *Backoff) Ready(destination string) (bool, time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.state[destination]
	if !ok || !b.now().Before(s.until) {
		return true, time.Time{}
	}
	return false, s.until
}

// Record notes the outcome of a request to destination.
func (b *Backoff) Record(destination string, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == nil {
		b.state = map[string]backoffState{}
	}
	if err == nil {
		delete(b.state, destination)
		return
	}
	// A Matrix error from a reachable server that is not a server error
	// does not mean the server is down.
	var me *Error
	if errors.As(err, &me) && me.Status < 500 && me.Status != http.StatusTooManyRequests {
		delete(b.state, destination)
		return
	}
	minD, maxD := b.Min, b.Max
	if minD <= 0 {
		minD = 5 * time.Second
	}
	if maxD <= 0 {
		maxD = time.Hour
	}
	s := b.state[destination]
	s.delay = min(max(s.delay*2, minD), maxD)
	s.until = b.now().Add(s.delay)
	b.state[destination] = s
}

// Retry runs f for destination unless it is backing off, and records the
// outcome. It does not loop: callers retry later (on their next
// transaction), which is what the spec advises instead of retry storms.
func (b *Backoff) Retry(destination string, f func() error) error {
	if ok, until := b.Ready(destination); !ok {
		return fmt.Errorf("%w until %s", ErrBackingOff, until.Format(time.RFC3339))
	}
	err := f()
	b.Record(destination, err)
	return err
}
