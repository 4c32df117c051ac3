package clientapi

import (
	"context"
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
