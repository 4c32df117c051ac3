package clientapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/httputil"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/logs"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/roomserver"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/syncapi"
	"github.com/gomatrixlib/gomatrixlib/id"
	"github.com/nats-io/nats.go"
)

// The client API is the writer of the logs besides the room events:
// typing, receipts, presence, to-device messages and account data. Each
// write appends to its log and, where the client reads its own write back
// (account data, presence, receipts), waits until the sync reader has
// applied it.

// publish appends v to the stream's log (deduplicated by msgID when set)
// and returns its sequence number.
func (a *API) publish(ctx context.Context, stream logs.Stream, msgID string, v any) (uint64, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return 0, err
	}
	opts := []nats.PubOpt{nats.Context(ctx)}
	if msgID != "" {
		opts = append(opts, nats.MsgId(msgID))
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	opts[0] = nats.Context(pctx)
	ack, err := a.js.Publish(stream.Subject, data, opts...)
	if err != nil {
		a.log.Warn("clientapi: a log is unreachable", "stream", stream.Name, "err", err)
		e := httputil.Errorf(http.StatusServiceUnavailable, "M_UNKNOWN", "the "+stream.Name+" log is unreachable; retry later")
		e.RetryAfter = 5 * time.Second
		return 0, e
	}
	return ack.Sequence, nil
}

// publishAndWait publishes and waits until the sync reader applied it.
func (a *API) publishAndWait(ctx context.Context, stream logs.Stream, msgID string, v any) error {
	seq, err := a.publish(ctx, stream, msgID, v)
	if err != nil {
		return err
	}
	return a.sync.WaitApplied(ctx, stream, seq)
}

// typing keeps, per room and user, the timer that ends a typing
// notification the client does not end itself.
type typingTimers struct {
	mu     sync.Mutex
	timers map[[2]string]*time.Timer
}

// maxTypingTimeout caps how long one typing notification lasts.
const maxTypingTimeout = 2 * time.Minute

func (a *API) putTyping(w http.ResponseWriter, r *http.Request, d *device) error {
	roomID, userID := r.PathValue("roomId"), r.PathValue("userId")
	if userID != d.userID {
		return httputil.Errorf(http.StatusForbidden, "M_FORBIDDEN", "cannot set another user's typing state")
	}
	var req struct {
		Typing  *bool  `json:"typing"`
		Timeout *int64 `json:"timeout"`
	}
	if err := httputil.ReadJSON(r, &req); err != nil {
		return err
	}
	if req.Typing == nil {
		return httputil.Errorf(http.StatusBadRequest, "M_MISSING_PARAM", "typing is required")
	}
	if err := a.requireJoined(roomID, d.userID); err != nil {
		return err
	}
	timeout := 30 * time.Second
	if req.Timeout != nil && *req.Timeout > 0 {
		timeout = min(time.Duration(*req.Timeout)*time.Millisecond, maxTypingTimeout)
	}
	entry := syncapi.TypingEntry{RoomID: roomID, UserID: d.userID, Typing: *req.Typing}
	if entry.Typing {
		entry.ExpiresTS = time.Now().Add(timeout).UnixMilli()
	}
	if _, err := a.publish(r.Context(), logs.Typing, "", entry); err != nil {
		return err
	}
	a.sendTyping(r.Context(), roomID, d.userID, entry.Typing)
	key := [2]string{roomID, d.userID}
	a.typing.mu.Lock()
	if t := a.typing.timers[key]; t != nil {
		t.Stop()
		delete(a.typing.timers, key)
	}
	if entry.Typing {
		var t *time.Timer
		t = time.AfterFunc(timeout, func() {
			a.typing.mu.Lock()
			current := a.typing.timers[key] == t
			if current {
				delete(a.typing.timers, key)
			}
			a.typing.mu.Unlock()
			if current {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_, _ = a.publish(ctx, logs.Typing, "", syncapi.TypingEntry{RoomID: roomID, UserID: d.userID})
				a.sendTyping(ctx, roomID, d.userID, false)
			}
		})
		a.typing.timers[key] = t
	}
	a.typing.mu.Unlock()
	httputil.WriteJSON(w, 200, map[string]any{})
	return nil
}

// receiptTypes are the receipt types the server stores as receipts.
var receiptTypes = map[string]bool{"m.read": true, "m.read.private": true}

func (a *API) postReceipt(w http.ResponseWriter, r *http.Request, d *device) error {
	roomID, typ, eventID := r.PathValue("roomId"), r.PathValue("receiptType"), r.PathValue("eventId")
	var req struct {
		ThreadID string `json:"thread_id"`
	}
	if err := httputil.ReadJSON(r, &req); err != nil {
		return err
	}
	if !receiptTypes[typ] && typ != "m.fully_read" {
		return httputil.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "unknown receipt type")
	}
	if err := a.checkReadTarget(roomID, eventID, d.userID); err != nil {
		return err
	}
	if typ == "m.fully_read" {
		if req.ThreadID != "" {
			return httputil.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "m.fully_read has no thread")
		}
		if err := a.setFullyRead(r.Context(), d.userID, roomID, eventID); err != nil {
			return err
		}
	} else if err := a.writeReceipt(r.Context(), d.userID, roomID, typ, req.ThreadID, eventID); err != nil {
		return err
	}
	httputil.WriteJSON(w, 200, map[string]any{})
	return nil
}

// postReadMarkers sets the fully-read marker and the read receipts in one
// call.
func (a *API) postReadMarkers(w http.ResponseWriter, r *http.Request, d *device) error {
	roomID := r.PathValue("roomId")
	var req struct {
		FullyRead   string `json:"m.fully_read"`
		Read        string `json:"m.read"`
		ReadPrivate string `json:"m.read.private"`
	}
	if err := httputil.ReadJSON(r, &req); err != nil {
		return err
	}
	if err := a.requireJoined(roomID, d.userID); err != nil {
		return err
	}
	for _, e := range []string{req.FullyRead, req.Read, req.ReadPrivate} {
		if e != "" {
			if err := a.checkReadTarget(roomID, e, d.userID); err != nil {
				return err
			}
		}
	}
	if req.FullyRead != "" {
		if err := a.setFullyRead(r.Context(), d.userID, roomID, req.FullyRead); err != nil {
			return err
		}
	}
	if req.Read != "" {
		if err := a.writeReceipt(r.Context(), d.userID, roomID, "m.read", "", req.Read); err != nil {
			return err
		}
	}
	if req.ReadPrivate != "" {
		if err := a.writeReceipt(r.Context(), d.userID, roomID, "m.read.private", "", req.ReadPrivate); err != nil {
			return err
		}
	}
	httputil.WriteJSON(w, 200, map[string]any{})
	return nil
}

// checkReadTarget checks that the user is joined and the event is one of
// the room's.
func (a *API) checkReadTarget(roomID, eventID, userID string) error {
	if err := a.requireJoined(roomID, userID); err != nil {
		return err
	}
	p, err := a.rs.Event(eventID)
	if errors.Is(err, roomserver.ErrUnknownEvent) || (err == nil && p.RoomID() != roomID) {
		return httputil.Errorf(http.StatusNotFound, "M_NOT_FOUND", "no such event in this room")
	}
	return err
}

func (a *API) writeReceipt(ctx context.Context, userID, roomID, typ, threadID, eventID string) error {
	ts := time.Now().UnixMilli()
	if err := a.publishAndWait(ctx, logs.Receipts, "", syncapi.ReceiptEntry{RoomID: roomID, UserID: userID, Type: typ,
		ThreadID: threadID, EventID: eventID, TS: ts}); err != nil {
		return err
	}
	if typ == "m.read" {
		a.sendReceipt(ctx, roomID, userID, threadID, eventID, ts)
	}
	return nil
}

func (a *API) setFullyRead(ctx context.Context, userID, roomID, eventID string) error {
	content, _ := json.Marshal(map[string]string{"event_id": eventID})
	return a.publishAndWait(ctx, logs.AccountData, "", syncapi.AccountDataEntry{UserID: userID, RoomID: roomID, Type: "m.fully_read", Content: content})
}

// Account data.

func (a *API) accountDataTarget(r *http.Request, d *device) (roomID, typ string, err error) {
	if r.PathValue("userId") != d.userID {
		return "", "", httputil.Errorf(http.StatusForbidden, "M_FORBIDDEN", "cannot access another user's account data")
	}
	roomID, typ = r.PathValue("roomId"), r.PathValue("type")
	if roomID != "" {
		if _, err := id.ParseRoomID(roomID); err != nil {
			return "", "", httputil.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "not a room ID")
		}
	}
	if len(typ) > 255 {
		return "", "", httputil.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "type too long")
	}
	return roomID, typ, nil
}

func (a *API) putAccountData(w http.ResponseWriter, r *http.Request, d *device) error {
	roomID, typ, err := a.accountDataTarget(r, d)
	if err != nil {
		return err
	}
	if typ == "m.fully_read" || typ == "m.push_rules" {
		return httputil.Errorf(http.StatusMethodNotAllowed, "M_BAD_JSON", typ+" cannot be set through account data")
	}
	content, err := httputil.ReadRawObject(r)
	if err != nil {
		return err
	}
	if err := a.publishAndWait(r.Context(), logs.AccountData, "", syncapi.AccountDataEntry{UserID: d.userID, RoomID: roomID, Type: typ, Content: content}); err != nil {
		return err
	}
	httputil.WriteJSON(w, 200, map[string]any{})
	return nil
}

func (a *API) getAccountData(w http.ResponseWriter, r *http.Request, d *device) error {
	roomID, typ, err := a.accountDataTarget(r, d)
	if err != nil {
		return err
	}
	content, ok, err := a.sync.AccountData(r.Context(), d.userID, roomID, typ)
	if err != nil {
		return err
	}
	if !ok {
		return httputil.Errorf(http.StatusNotFound, "M_NOT_FOUND", "no account data of this type")
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(content)
	return nil
}

// Presence.

var presenceStates = map[string]bool{"online": true, "offline": true, "unavailable": true}

func (a *API) putPresence(w http.ResponseWriter, r *http.Request, d *device) error {
	if r.PathValue("userId") != d.userID {
		return httputil.Errorf(http.StatusForbidden, "M_FORBIDDEN", "cannot set another user's presence")
	}
	var req struct {
		Presence  string  `json:"presence"`
		StatusMsg *string `json:"status_msg"`
	}
	if err := httputil.ReadJSON(r, &req); err != nil {
		return err
	}
	if !presenceStates[req.Presence] {
		return httputil.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "presence must be online, offline or unavailable")
	}
	if req.StatusMsg != nil && len(*req.StatusMsg) > 1024 {
		return httputil.Errorf(http.StatusBadRequest, "M_TOO_LARGE", "status_msg too long")
	}
	if err := a.setPresence(r.Context(), d.userID, req.Presence, req.StatusMsg, true); err != nil {
		return err
	}
	httputil.WriteJSON(w, 200, map[string]any{})
	return nil
}

func (a *API) getPresence(w http.ResponseWriter, r *http.Request, _ *device) error {
	userID := r.PathValue("userId")
	p, ok, err := a.sync.Presence(r.Context(), userID)
	if err != nil {
		return err
	}
	if !ok {
		exists, err := a.accountExists(r.Context(), userID)
		if err != nil {
			return err
		}
		if !exists {
			return httputil.Errorf(http.StatusNotFound, "M_NOT_FOUND", "unknown user")
		}
		p.Presence = "offline"
	}
	httputil.WriteJSON(w, 200, syncapi.PresenceContent(p))
	return nil
}

// presenceState remembers what was last written per user, so that "last
// active" updates from sends and syncs are written only when the state
// changes or every presenceRefresh (an idle long-poll is not woken by its
// own user's activity more often than that).
type presenceState struct {
	mu   sync.Mutex
	last map[string]presenceMemo
}

type presenceMemo struct {
	presence string
	at       time.Time
}

// presenceRefresh is how often activity alone rewrites a user's presence
// (last active); it stays below the five minutes of currently_active.
const presenceRefresh = 4 * time.Minute

// setPresence writes a presence entry. Unless explicit, it is skipped
// when the same state was written less than presenceRefresh ago.
func (a *API) setPresence(ctx context.Context, userID, presence string, status *string, explicit bool) error {
	now := time.Now()
	a.presence.mu.Lock()
	m, seen := a.presence.last[userID]
	if !explicit && seen && m.presence == presence && now.Sub(m.at) < presenceRefresh {
		a.presence.mu.Unlock()
		return nil
	}
	a.presence.last[userID] = presenceMemo{presence: presence, at: now}
	a.presence.mu.Unlock()
	if status == nil && !explicit {
		if p, ok, err := a.sync.Presence(ctx, userID); err == nil && ok {
			status = p.StatusMsg
		}
	}
	entry := syncapi.PresenceEntry{UserID: userID, Presence: presence, StatusMsg: status, LastActiveTS: now.UnixMilli()}
	if explicit {
		return a.publishAndWait(ctx, logs.Presence, "", entry)
	}
	_, err := a.publish(ctx, logs.Presence, "", entry)
	return err
}

// touch marks the user active (a send or a sync); failures are logged
// only, as presence is best effort.
func (a *API) touch(ctx context.Context, userID, presence string) {
	if presence == "" {
		presence = "online"
	}
	if presence == "offline" {
		return
	}
	if err := a.setPresence(ctx, userID, presence, nil, false); err != nil {
		a.log.Debug("clientapi: presence update failed", "user_id", userID, "err", err)
	}
}

// To-device messages.

func (a *API) sendToDevice(w http.ResponseWriter, r *http.Request, d *device) error {
	evType, txnID := r.PathValue("eventType"), r.PathValue("txnId")
	var req struct {
		Messages map[string]map[string]json.RawMessage `json:"messages"`
	}
	if err := httputil.ReadJSON(r, &req); err != nil {
		return err
	}
	if req.Messages == nil {
		return httputil.Errorf(http.StatusBadRequest, "M_MISSING_PARAM", "messages is required")
	}
	out := map[string]map[string]json.RawMessage{}
	for user, devices := range req.Messages {
		uid, err := id.ParseUserID(user)
		if err != nil {
			return httputil.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "messages holds an invalid user ID")
		}
		if uid.Server().String() != a.serverName {
			continue // no federation of to-device messages in this example
		}
		for device, content := range devices {
			if len(content) == 0 || content[0] != '{' {
				return httputil.Errorf(http.StatusBadRequest, "M_BAD_JSON", "message content must be an object")
			}
			targets := []string{device}
			if device == "*" {
				if targets, err = a.deviceIDs(r.Context(), user); err != nil {
					return err
				}
			}
			for _, t := range targets {
				if out[user] == nil {
					out[user] = map[string]json.RawMessage{}
				}
				out[user][t] = content
			}
		}
	}
	if len(out) > 0 {
		msgID := "todevice/" + d.userID + "/" + d.deviceID + "/" + evType + "/" + txnID
		if _, err := a.publish(r.Context(), logs.ToDevice, msgID, syncapi.ToDeviceEntry{Sender: d.userID, Type: evType, Messages: out}); err != nil {
			return err
		}
	}
	httputil.WriteJSON(w, 200, map[string]any{})
	return nil
}

// Filters.

func (a *API) postFilter(w http.ResponseWriter, r *http.Request, d *device) error {
	if r.PathValue("userId") != d.userID {
		return httputil.Errorf(http.StatusForbidden, "M_FORBIDDEN", "cannot create filters for another user")
	}
	raw, err := httputil.ReadRawObject(r)
	if err != nil {
		return err
	}
	if _, err := syncapi.ParseFilter(raw); err != nil {
		return httputil.Errorf(http.StatusBadRequest, "M_BAD_JSON", err.Error())
	}
	var fid int64
	if err := a.db.QueryRowContext(r.Context(), `INSERT INTO cs_filters (user_id, json) VALUES (?, ?) RETURNING id`, d.userID, string(raw)).Scan(&fid); err != nil {
		return err
	}
	httputil.WriteJSON(w, 200, map[string]string{"filter_id": strconv.FormatInt(fid, 10)})
	return nil
}

func (a *API) getFilter(w http.ResponseWriter, r *http.Request, d *device) error {
	if r.PathValue("userId") != d.userID {
		return httputil.Errorf(http.StatusForbidden, "M_FORBIDDEN", "cannot read another user's filters")
	}
	raw, ok, err := a.storedFilter(r.Context(), d.userID, r.PathValue("filterId"))
	if err != nil {
		return err
	}
	if !ok {
		return httputil.Errorf(http.StatusNotFound, "M_NOT_FOUND", "no such filter")
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(raw)
	return nil
}

func (a *API) storedFilter(ctx context.Context, userID, filterID string) ([]byte, bool, error) {
	fid, err := strconv.ParseInt(filterID, 10, 64)
	if err != nil {
		return nil, false, nil
	}
	var raw string
	err = a.db.QueryRowContext(ctx, `SELECT json FROM cs_filters WHERE id = ? AND user_id = ?`, fid, userID).Scan(&raw)
	if isNoRows(err) {
		return nil, false, nil
	}
	return []byte(raw), err == nil, err
}
