package federationapi

import (
	"context"
	"strings"
	"time"

	"github.com/gomatrixlib/gomatrixlib/eventauth"
	"github.com/tidwall/gjson"
)

// Ephemeral receives the typing notifications and read receipts other
// servers send as EDUs; the client API writes them to its logs.
type Ephemeral interface {
	RemoteTyping(ctx context.Context, roomID, userID string, typing bool) error
	RemoteReceipt(ctx context.Context, roomID, userID, typ, threadID, eventID string, ts int64) error
}

// maxReceiptsPerEDU bounds the receipts taken from one m.receipt EDU.
const maxReceiptsPerEDU = 100

// edu handles one EDU of a transaction from origin. What it cannot use
// (another server's user, a user not joined to the room, a bad shape, an
// EDU type this server does not handle) is dropped with a log line and
// counted; the transaction's answer does not change.
func (a *API) edu(ctx context.Context, origin string, e gjson.Result) {
	drop := func(reason string) {
		a.DroppedEDUs.Add(1)
		a.log.Info("federationapi: EDU dropped", "origin", origin, "edu_type", e.Get("edu_type").Str, "reason", reason)
	}
	if a.Ephemeral == nil {
		drop("no ephemeral writer")
		return
	}
	content := e.Get("content")
	if !content.IsObject() {
		drop("content is not an object")
		return
	}
	switch e.Get("edu_type").Str {
	case "m.typing":
		roomID, userID, typing := content.Get("room_id"), content.Get("user_id"), content.Get("typing")
		if roomID.Type != gjson.String || userID.Type != gjson.String || (typing.Type != gjson.True && typing.Type != gjson.False) {
			drop("m.typing needs room_id, user_id and typing")
			return
		}
		if reason := a.mayAct(origin, roomID.Str, userID.Str); reason != "" {
			drop(reason)
			return
		}
		if err := a.Ephemeral.RemoteTyping(ctx, roomID.Str, userID.Str, typing.Bool()); err != nil {
			drop("writing the typing log: " + err.Error())
		}
	case "m.receipt":
		n := 0
		content.ForEach(func(roomID, byType gjson.Result) bool {
			if !byType.IsObject() {
				drop("receipts of a room are not an object")
				return true
			}
			byType.ForEach(func(typ, byUser gjson.Result) bool {
				if typ.Str != "m.read" || !byUser.IsObject() {
					drop("only m.read receipts are sent between servers")
					return true
				}
				byUser.ForEach(func(userID, receipt gjson.Result) bool {
					if n++; n > maxReceiptsPerEDU {
						drop("too many receipts in one EDU")
						return false
					}
					ids := receipt.Get("event_ids").Array()
					ts := receipt.Get("data.ts")
					thread := receipt.Get("data.thread_id")
					if len(ids) == 0 || ids[0].Type != gjson.String || (ts.Exists() && ts.Type != gjson.Number) ||
						(thread.Exists() && thread.Type != gjson.String) {
						drop("a receipt needs event_ids and a numeric data.ts")
						return true
					}
					if reason := a.mayAct(origin, roomID.Str, userID.Str); reason != "" {
						drop(reason)
						return true
					}
					at := ts.Int()
					if !ts.Exists() {
						at = time.Now().UnixMilli()
					}
					if err := a.Ephemeral.RemoteReceipt(ctx, roomID.Str, userID.Str, "m.read", thread.Str, ids[0].Str, at); err != nil {
						drop("writing the receipt log: " + err.Error())
					}
					return true
				})
				return n <= maxReceiptsPerEDU
			})
			return n <= maxReceiptsPerEDU
		})
	default:
		drop("EDU type not handled")
	}
}

// mayAct says why origin may not speak for userID in roomID ("" if it
// may): the user must belong to origin and be joined to the room, and the
// room's server ACL must allow origin.
func (a *API) mayAct(origin, roomID, userID string) string {
	if i := strings.IndexByte(userID, ':'); !strings.HasPrefix(userID, "@") || i < 0 || userID[i+1:] != origin {
		return "the user does not belong to the sending server"
	}
	member := eventauth.StateKey{Type: "m.room.member", StateKey: userID}
	state, err := a.rs.CurrentStateFor(roomID, []eventauth.StateKey{member, {Type: "m.room.server_acl", StateKey: ""}})
	if err != nil {
		return "unknown room"
	}
	if !ACLAllows(state, origin) {
		return "the room's server ACL denies the sending server"
	}
	if m := state[member]; m == nil || gjson.GetBytes(m.Content(), "membership").Str != "join" {
		return "the user is not joined to the room"
	}
	return ""
}
