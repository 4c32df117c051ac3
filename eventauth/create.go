package eventauth

import (
	"fmt"

	"github.com/tidwall/gjson"

	"github.com/gomatrixlib/gomatrixlib/id"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
)

// checkCreate applies the m.room.create rules (rule 1).
func (c *checker) checkCreate() (rule, error) {
	ev := c.ev
	if n := len(ev.PrevEventIDs()); n > 0 {
		return c.reject(rCreatePrevEvents, fmt.Sprintf("m.room.create has %d prev_events; it must have none", n))
	}
	if c.v.RoomIDFromCreateEvent {
		if topLevel(ev.JSON(), "room_id").Exists() {
			return c.reject(rCreateHasRoomID,
				"m.room.create has a room_id; in this room version the room ID is derived from the create event")
		}
	} else if rd, sd := domainOf(ev.RoomID()), domainOf(c.sender); rd != sd {
		return c.reject(rCreateRoomIDDomain, fmt.Sprintf(
			"room ID %q is not on the sender's server %q", ev.RoomID(), sd))
	}
	content := ev.Content()
	if rv := topLevel(content, "room_version"); rv.Exists() {
		if rv.Type != gjson.String {
			return c.reject(rCreateRoomVersion, "content.room_version is not a string")
		}
		if _, err := roomversion.Get(rv.Str); err != nil {
			return c.reject(rCreateRoomVersion, fmt.Sprintf("content.room_version %q is not a known room version", rv.Str))
		}
	}
	if !c.v.CreatorFromSender && !topLevel(content, "creator").Exists() {
		return c.reject(rCreateCreator, "m.room.create content has no creator")
	}
	if c.v.PrivilegedCreators {
		if ac := topLevel(content, "additional_creators"); ac.Exists() {
			if err := validAdditionalCreators(ac); err != "" {
				return c.reject(rCreateAdditionalCreators, err)
			}
		}
	}
	return rCreateAllow, nil
}

// validAdditionalCreators returns "" if ac is an array of valid user IDs and
// otherwise why not.
func validAdditionalCreators(ac gjson.Result) string {
	if !ac.IsArray() {
		return "content.additional_creators is not an array"
	}
	reason := ""
	ac.ForEach(func(_, u gjson.Result) bool {
		if u.Type != gjson.String {
			reason = fmt.Sprintf("content.additional_creators has a non-string entry %s", truncate(u.Raw))
			return false
		}
		if _, err := id.ParseUserID(u.Str); err != nil {
			reason = fmt.Sprintf("content.additional_creators entry %q is not a valid user ID: %v", truncate(u.Str), err)
			return false
		}
		return true
	})
	return reason
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
