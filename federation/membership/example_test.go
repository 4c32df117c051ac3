package membership_test

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/gomatrixlib/gomatrixlib/federation/membership"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
)

func Example() {
	rules, err := roomversion.Get("12")
	if err != nil {
		panic(err)
	}
	// A server that knows room versions 1-11 asks to join a version 12 room.
	err = membership.CheckMakeRequest(membership.MakeRequest{
		Origin: "old.example", UserID: "@bob:old.example", Membership: membership.Join,
		Versions: []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"}, Rules: rules,
	})
	var me *membership.Error
	if errors.As(err, &me) {
		body, _ := json.Marshal(me)
		fmt.Println(me.Status, errors.Is(err, membership.ErrIncompatibleRoomVersion))
		fmt.Println(string(body))
	}
	// Output:
	// 400 true
	// {"errcode":"M_INCOMPATIBLE_ROOM_VERSION","error":"membership: incompatible room version: the room has version 12, which old.example does not support","room_version":"12"}
}
