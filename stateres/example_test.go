package stateres_test

import (
	"context"
	"fmt"

	"github.com/gomatrixlib/gomatrixlib/eventauth"
	"github.com/gomatrixlib/gomatrixlib/roomtest"
	"github.com/gomatrixlib/gomatrixlib/stateres"
)

func ExampleResolve() {
	// A room of the default version that forks: each branch sets the topic.
	room := roomtest.New(nil, roomtest.Options{})
	other := room.Fork()
	room.SetState(room.Creator(), "m.room.topic", "", map[string]any{"topic": "first"})
	other.SetState(room.Creator(), "m.room.topic", "", map[string]any{"topic": "second"})

	resolved, err := stateres.Resolve(context.Background(), room.Rules,
		[]map[eventauth.StateKey]string{room.StateIDs(), other.StateIDs()}, room)
	if err != nil {
		fmt.Println(err)
		return
	}
	// Both topics have the same mainline position; the later one is
	// applied last and wins.
	topic := room.Event(resolved[eventauth.StateKey{Type: "m.room.topic"}])
	fmt.Println(string(topic.Content()))
	// Output: {"topic":"second"}
}
