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

// remoteTyping is one m.typing EDU as read from a transaction.
type remoteTyping struct {
	roomID, userID string
	typing         bool
}

// remoteReceipt is one user's m.read receipt of an m.receipt EDU. ts is
// data.ts, or 0 when hasTS is false (the receiver then stamps it).
type remoteReceipt struct {
	roomID, userID, threadID, eventID string
	ts                                int64
	hasTS                             bool
}

// eduContent is what readEDU takes from one EDU: typing or receipts, and
// the reason for each part it could not use.
type eduContent struct {
	typing   *remoteTyping
	receipts []remoteReceipt
	dropped  []string
}

// readEDU reads one EDU of a transaction. It only checks the shape: who may
// act is for the caller. An m.receipt EDU gives at most maxReceiptsPerEDU
// receipts; other EDU types give nothing but a drop reason.
func readEDU(e gjson.Result) eduContent {
	var out eduContent
	drop := func(reason string) { out.dropped = append(out.dropped, reason) }
	content := e.Get("content")
	if !content.IsObject() {
		drop("content is not an object")
		return out
	}
	switch e.Get("edu_type").Str {
	case "m.typing":
		roomID, userID, typing := content.Get("room_id"), content.Get("user_id"), content.Get("typing")
		if roomID.Type != gjson.String || userID.Type != gjson.String || (typing.Type != gjson.True && typing.Type != gjson.False) {
			drop("m.typing needs room_id, user_id and typing")
			return out
		}
		out.typing = &remoteTyping{roomID: roomID.Str, userID: userID.Str, typing: typing.Bool()}
	case "m.receipt":
		full := false
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
					if len(out.receipts) == maxReceiptsPerEDU {
						drop("too many receipts in one EDU")
						full = true
						return false
					}
					ids := receipt.Get("event_ids")
					first := ids.Get("0")
					ts := receipt.Get("data.ts")
					thread := receipt.Get("data.thread_id")
					if !ids.IsArray() || first.Type != gjson.String || (ts.Exists() && ts.Type != gjson.Number) ||
						(thread.Exists() && thread.Type != gjson.String) {
						drop("a receipt needs event_ids and a numeric data.ts")
						return true
					}
					out.receipts = append(out.receipts, remoteReceipt{
						roomID: roomID.Str, userID: userID.Str, threadID: thread.Str, eventID: first.Str,
						ts: ts.Int(), hasTS: ts.Exists(),
					})
					return true
				})
				return !full
			})
			return !full
		})
	default:
		drop("EDU type not handled")
	}
	return out
}

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
	c := readEDU(e)
	for _, reason := range c.dropped {
		drop(reason)
	}
	if t := c.typing; t != nil {
		if reason := a.mayAct(origin, t.roomID, t.userID); reason != "" {
			drop(reason)
		} else if err := a.Ephemeral.RemoteTyping(ctx, t.roomID, t.userID, t.typing); err != nil {
			drop("writing the typing log: " + err.Error())
		}
	}
	for _, r := range c.receipts {
		if reason := a.mayAct(origin, r.roomID, r.userID); reason != "" {
			drop(reason)
			continue
		}
		at := r.ts
		if !r.hasTS {
			at = time.Now().UnixMilli()
		}
		if err := a.Ephemeral.RemoteReceipt(ctx, r.roomID, r.userID, "m.read", r.threadID, r.eventID, at); err != nil {
			drop("writing the receipt log: " + err.Error())
		}
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
