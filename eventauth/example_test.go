package eventauth_test

import (
	"errors"
	"fmt"

	"github.com/gomatrixlib/gomatrixlib/eventauth"
	"github.com/gomatrixlib/gomatrixlib/roomtest"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
)

func Example() {
	// A room of version 10 with only its create event and its creator's
	// join: no join rules event, so the join rule is "invite".
	room := roomtest.New(nil, roomtest.Options{Version: "10", Bare: true})
	fmt.Println("alice joined:", eventauth.Check(room.Last(), room.StateBefore(room.Last().EventID())))

	// Build bob's join without the kit's own check, then ask the rules.
	intruder, err := room.Build(roomtest.Event{Type: "m.room.member", Sender: "@bob:b.test",
		StateKey: roomtest.Str("@bob:b.test"), Content: `{"membership":"join"}`, Unchecked: true})
	if err != nil {
		panic(err)
	}
	err = eventauth.Check(intruder, room.State())
	fmt.Println("bob joins:", err)
	fmt.Println("is a join rule rejection:", errors.Is(err, eventauth.ErrJoin))
	var ae *eventauth.Error
	if errors.As(err, &ae) {
		fmt.Println("rule:", ae.Rule)
	}
	// Output:
	// alice joined: <nil>
	// bob joins: eventauth: rule 4.3.7 (room version 10): the join rule is "invite" and @bob:b.test is not invited (membership none)
	// is a join rule rejection: true
	// rule: 4.3.7
}

func ExampleAuthEventsNeeded() {
	rules, err := roomversion.Get(roomversion.Default)
	if err != nil {
		panic(err)
	}
	// A restricted join: no create event (room version 12 derives it from
	// the room ID), and the authorising user's member event.
	content := []byte(`{"membership":"join","join_authorised_via_users_server":"@alice:a.test"}`)
	for _, k := range eventauth.AuthEventsNeeded(rules, "m.room.member", "@bob:b.test", "@bob:b.test", content) {
		fmt.Printf("%s %q\n", k.Type, k.StateKey)
	}
	// Output:
	// m.room.power_levels ""
	// m.room.member "@bob:b.test"
	// m.room.join_rules ""
	// m.room.member "@alice:a.test"
}
