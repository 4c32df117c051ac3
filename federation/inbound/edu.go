package inbound

import (
	"errors"
	"fmt"

	"github.com/gomatrixlib/gomatrixlib/id"
	"github.com/tidwall/gjson"
)

// ErrEDUOrigin is wrapped by [CheckEDUOrigin].
var ErrEDUOrigin = errors.New("inbound: EDU about a user of another server")

// CheckEDUOrigin checks that an EDU speaks only for users of origin, as
// receivers do for the EDUs a server may only send about its own users:
// m.typing (user_id), m.receipt (every user of every room), m.presence
// (every push entry's user_id), m.direct_to_device (sender),
// m.device_list_update and m.signing_key_update (user_id). Other EDU
// types are not checked. Errors wrap [ErrEDUOrigin] and name the field.
func CheckEDUOrigin(edu EDU, origin string) error {
	c := gjson.ParseBytes(edu.Content)
	check := func(field string, v gjson.Result) error {
		uid, err := id.ParseUserID(v.Str)
		if v.Type != gjson.String || err != nil {
			return fmt.Errorf("%w: %s %s is not a user ID", ErrEDUOrigin, field, truncate(v.Raw))
		}
		if uid.Server().String() != origin {
			return fmt.Errorf("%w: %s %s is not on %s", ErrEDUOrigin, field, v.Str, origin)
		}
		return nil
	}
	var err error
	switch edu.Type {
	case "m.typing", "m.device_list_update", "m.signing_key_update":
		return check("user_id", c.Get("user_id"))
	case "m.direct_to_device":
		return check("sender", c.Get("sender"))
	case "m.presence":
		c.Get("push").ForEach(func(_, p gjson.Result) bool {
			err = check("push user_id", p.Get("user_id"))
			return err == nil
		})
	case "m.receipt":
		c.ForEach(func(room, r gjson.Result) bool {
			r.ForEach(func(_, users gjson.Result) bool {
				users.ForEach(func(user, _ gjson.Result) bool {
					err = check("receipt user of "+room.Str, user)
					return err == nil
				})
				return err == nil
			})
			return err == nil
		})
	}
	return err
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
