package roomtest_test

import (
	"context"
	"fmt"

	"github.com/gomatrixlib/gomatrixlib/eventauth"
	"github.com/gomatrixlib/gomatrixlib/roomtest"
	"github.com/gomatrixlib/gomatrixlib/stateres"
)

// A room that forks: on each branch the creator sets another topic;
// state resolution picks one and the branches merge.
func Example() {
	r := roomtest.New(nil, roomtest.Options{Version: "12"})
	fork := r.Fork()
	r.SetState(r.Creator(), "m.room.topic", "", map[string]any{"topic": "first"})
	fork.SetState(r.Creator(), "m.room.topic", "", map[string]any{"topic": "second"})

	sets := []map[eventauth.StateKey]string{r.StateIDs(), fork.StateIDs()}
	resolved, err := stateres.Resolve(context.Background(), r.Rules, sets, r)
	if err != nil {
		fmt.Println(err)
		return
	}
	r.Merge(resolved, fork)
	merge := r.Message(r.Creator(), "merged")

	topic := r.StateAfter(merge.EventID())[eventauth.StateKey{Type: "m.room.topic"}]
	fmt.Println(string(topic.Content()), len(merge.PrevEventIDs()))
	// Output: {"topic":"second"} 2
}
