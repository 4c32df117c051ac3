package event_test

import (
	"fmt"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
	"github.com/gomatrixlib/gomatrixlib/signing"
)

func Example() {
	rules, _ := roomversion.Get("12")
	key, _ := signing.ParseKey("ed25519 1 YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1")
	empty := ""
	b := event.Builder{Type: "m.room.create", Sender: "@a:domain", StateKey: &empty,
		Content: []byte(`{"room_version":"12"}`), Depth: 1, OriginServerTS: 1000000}
	create, err := b.Build(rules, "domain", key.KeyID(), key.PrivateKey())
	if err != nil {
		panic(err)
	}
	fmt.Println(create.EventID())
	fmt.Println(create.RoomID())
	// Output:
	// $P5-6WTYQ_woy6f4nmleE0XqxjtZcyKGza5_gDN-KAdM
	// !P5-6WTYQ_woy6f4nmleE0XqxjtZcyKGza5_gDN-KAdM
}
