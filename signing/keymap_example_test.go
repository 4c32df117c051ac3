package signing_test

import (
	"bytes"
	"context"
	"fmt"

	"github.com/gomatrixlib/gomatrixlib/roomversion"
	"github.com/gomatrixlib/gomatrixlib/signing"
)

// A bridge verifies an event it received with the key the sending server
// publishes (GET /_matrix/key/v2/server), held in a KeyMap.
func ExampleKeyMap() {
	event := []byte(`{"auth_events":[],"content":{"membership":"join"},"depth":2,"hashes":{"sha256":"TcRcImZbXG5qc2WUTnU9xgCQyqqafSCLfFCb1WG80uU"},"origin_server_ts":1000001,"prev_events":["$P5-6WTYQ_woy6f4nmleE0XqxjtZcyKGza5_gDN-KAdM"],"room_id":"!P5-6WTYQ_woy6f4nmleE0XqxjtZcyKGza5_gDN-KAdM","sender":"@a:domain","signatures":{"domain":{"ed25519:1":"nCqEGEYAhRa0E3awGCYi+oLYGRofpBqY7MiaVvHkCmaZ4nsR51UUNYqThhV1IkaOXccoRStde9tj+XRwjMlkDg"}},"state_key":"@a:domain","type":"m.room.member"}`)
	pub, _ := signing.DecodeBase64("XGX0JRS2Af3be3knz2fBiRbApjm2Dh61gXDJA8kcJNI")
	keys := signing.KeyMap{"domain": {"ed25519:1": {Public: pub}}}
	rules, _ := roomversion.Get("12")

	fmt.Println(signing.VerifyEvent(context.Background(), rules, event, keys))
	forged := bytes.Replace(event, []byte(`"depth":2`), []byte(`"depth":3`), 1)
	fmt.Println(signing.VerifyEvent(context.Background(), rules, forged, keys))
	// Output:
	// <nil>
	// signing: signature does not verify: domain with ed25519:1
}
