package clientapi

import (
	"context"
	"encoding/json"
	"time"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/logs"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/syncapi"
)

// remoteTypingTimeout is how long a remote user's typing notification
// lasts: the m.typing EDU carries no timeout, and the sending server
// repeats it while the user types.
const remoteTypingTimeout = 30 * time.Second

// RemoteTyping writes another server's m.typing EDU to the typing log,
// as putTyping does for our users. The federation API has checked that
// the user belongs to the sending server and is joined to the room.
func (a *API) RemoteTyping(ctx context.Context, roomID, userID string, typing bool) error {
	entry := syncapi.TypingEntry{RoomID: roomID, UserID: userID, Typing: typing}
	if typing {
		entry.ExpiresTS = time.Now().Add(remoteTypingTimeout).UnixMilli()
	}
	_, err := a.publish(ctx, logs.Typing, "", entry)
	return err
}

// RemoteReceipt writes a receipt from another server's m.receipt EDU to
// the receipt log, with the time the sending server gave.
func (a *API) RemoteReceipt(ctx context.Context, roomID, userID, typ, threadID, eventID string, ts int64) error {
	_, err := a.publish(ctx, logs.Receipts, "", syncapi.ReceiptEntry{RoomID: roomID, UserID: userID, Type: typ,
		ThreadID: threadID, EventID: eventID, TS: ts})
	return err
}

// sendEDU hands an EDU about the room to OutboundEDU, if set, for the
// other servers in the room. A failure is logged: EDUs are best effort.
func (a *API) sendEDU(ctx context.Context, roomID, eduType string, content any) {
	if a.OutboundEDU == nil {
		return
	}
	edu, err := json.Marshal(map[string]any{"edu_type": eduType, "content": content})
	if err == nil {
		err = a.OutboundEDU(ctx, roomID, edu)
	}
	if err != nil {
		a.log.Warn("clientapi: EDU not queued for other servers", "room_id", roomID, "edu_type", eduType, "err", err)
	}
}

// sendTyping sends our user's typing state to the room's other servers.
func (a *API) sendTyping(ctx context.Context, roomID, userID string, typing bool) {
	a.sendEDU(ctx, roomID, "m.typing", map[string]any{"room_id": roomID, "user_id": userID, "typing": typing})
}

// sendReceipt sends our user's public read receipt to the room's other
// servers (private receipts stay here).
func (a *API) sendReceipt(ctx context.Context, roomID, userID, threadID, eventID string, ts int64) {
	data := map[string]any{"ts": ts}
	if threadID != "" {
		data["thread_id"] = threadID
	}
	a.sendEDU(ctx, roomID, "m.receipt", map[string]any{roomID: map[string]any{"m.read": map[string]any{
		userID: map[string]any{"event_ids": []string{eventID}, "data": data}}}})
}
