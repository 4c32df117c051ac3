package stateres_test

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/gomatrixlib/gomatrixlib/eventauth"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
	"github.com/gomatrixlib/gomatrixlib/stateres"
	"github.com/gomatrixlib/gomatrixlib/stateres/roomgen"
)

func ExampleResolve() {
	rules, err := roomversion.Get(roomversion.Default)
	if err != nil {
		panic(err)
	}
	// A room that forks: each branch sets the topic.
	room, main, err := roomgen.New(rules, roomgen.Creator)
	if err != nil {
		panic(err)
	}
	other := main.Fork()
	empty := ""
	if _, err := main.Send("m.room.topic", &empty, roomgen.Creator, map[string]any{"topic": "first"}); err != nil {
		panic(err)
	}
	if _, err := other.Send("m.room.topic", &empty, roomgen.Creator, map[string]any{"topic": "second"}); err != nil {
		panic(err)
	}
	resolved, err := stateres.Resolve(context.Background(), rules,
		[]map[eventauth.StateKey]string{main.State(), other.State()}, room)
	if err != nil {
		panic(err)
	}
	// Both topics have the same mainline position; the later one is
	// applied last and wins.
	topic := room.Event(resolved[eventauth.StateKey{Type: "m.room.topic"}])
	var content struct{ Topic string }
	if err := json.Unmarshal(topic.Content(), &content); err != nil {
		panic(err)
	}
	fmt.Println(content.Topic)
	// Output: second
}
