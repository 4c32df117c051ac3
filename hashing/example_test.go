package hashing_test

import (
	"fmt"

	"github.com/gomatrixlib/gomatrixlib/hashing"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
)

func Example() {
	rules, _ := roomversion.Get("12")
	create := []byte(`{"auth_events":[],"content":{"room_version":"12"},"depth":1,"hashes":{"sha256":"ccqBumrNf46eCfIkdZSYW9RNafS0xFYYDm5rnZBSVJU"},"origin_server_ts":1000000,"prev_events":[],"sender":"@a:domain","signatures":{"domain":{"ed25519:1":"0iTJ32BZFymf41Y7UBttP2wZ0JTo6UjsLDQuf+79LB+WeKVfoLyR2I8RF23ZdFgCuxtjVBl5MKXIOWP+ocELDw"}},"state_key":"","type":"m.room.create"}`)
	eventID, _ := hashing.EventID(rules, create)
	roomID, _ := hashing.RoomIDFromCreate(rules, create)
	fmt.Println(eventID)
	fmt.Println(roomID)
	fmt.Println(hashing.CheckContentHash(create))
	// Output:
	// $P5-6WTYQ_woy6f4nmleE0XqxjtZcyKGza5_gDN-KAdM
	// !P5-6WTYQ_woy6f4nmleE0XqxjtZcyKGza5_gDN-KAdM
	// <nil>
}
