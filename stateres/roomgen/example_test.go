package roomgen_test

import (
	"fmt"

	"github.com/gomatrixlib/gomatrixlib/roomversion"
	"github.com/gomatrixlib/gomatrixlib/stateres/roomgen"
)

func ExampleNew() {
	rules, err := roomversion.Get(roomversion.Default)
	if err != nil {
		panic(err)
	}
	room, main, err := roomgen.New(rules, roomgen.Creator)
	if err != nil {
		panic(err)
	}
	fork := main.Fork()
	topic := ""
	if _, err := fork.Send("m.room.topic", &topic, roomgen.Creator, map[string]any{"topic": "hi"}); err != nil {
		panic(err)
	}
	fmt.Println(len(room.All()), len(main.State()), len(fork.State()))
	// Output: 3 2 3
}
