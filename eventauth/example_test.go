package eventauth_test

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/eventauth"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
)

func Example() {
	rules, err := roomversion.Get("10")
	if err != nil {
		panic(err)
	}
	seed := sha256.Sum256([]byte("example"))
	key := ed25519.NewKeyFromSeed(seed[:])
	state := eventauth.StateMap{}
	var prev []string
	build := func(typ, sender string, stateKey *string, content string) *event.PDU {
		var auth []string
		sk := ""
		if stateKey != nil {
			sk = *stateKey
		}
		for _, ev := range state.Select(eventauth.AuthEventsNeeded(rules, typ, sk, sender, []byte(content))) {
			auth = append(auth, ev.EventID())
		}
		b := event.Builder{RoomID: "!room:a.test", Type: typ, Sender: sender, StateKey: stateKey,
			Content: []byte(content), PrevEvents: prev, AuthEvents: auth,
			Depth: int64(len(prev) + 1), OriginServerTS: 1700000000000}
		ev, err := b.Build(rules, "a.test", "ed25519:1", key)
		if err != nil {
			panic(err)
		}
		return ev
	}
	empty, alice, bob := "", "@alice:a.test", "@bob:a.test"
	create := build("m.room.create", alice, &empty, `{"creator":"@alice:a.test"}`)
	state.Add(create)
	prev = []string{create.EventID()}
	join := build("m.room.member", alice, &alice, `{"membership":"join"}`)
	fmt.Println("alice joins:", eventauth.Check(join, state))
	state.Add(join)
	prev = []string{join.EventID()}

	intruder := build("m.room.member", bob, &bob, `{"membership":"join"}`)
	err = eventauth.Check(intruder, state)
	fmt.Println("bob joins:", err)
	fmt.Println("is a join rule rejection:", errors.Is(err, eventauth.ErrJoin))
	var ae *eventauth.Error
	if errors.As(err, &ae) {
		fmt.Println("rule:", ae.Rule)
	}
	// Output:
	// alice joins: <nil>
	// bob joins: eventauth: rule 4.3.7 (room version 10): the join rule is "invite" and @bob:a.test is not invited (membership none)
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
