package missing_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/federation/missing"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
	"github.com/gomatrixlib/gomatrixlib/signing"
)

// silent is a server that knows nothing.
type silent struct{}

func (silent) GetMissingEvents(context.Context, string, string, []string, []string, int) (json.RawMessage, error) {
	return json.RawMessage(`{"events":[]}`), nil
}
func (silent) StateIDs(context.Context, string, string, string) (json.RawMessage, error) {
	return nil, errors.New("not found")
}
func (silent) GetEvent(context.Context, string, string) (json.RawMessage, error) {
	return nil, errors.New("not found")
}
func (silent) State(context.Context, string, string, string) (json.RawMessage, error) {
	return nil, errors.New("not found")
}

func Example() {
	rules, _ := roomversion.Get("10")
	key, _ := signing.GenerateKey("ed25519:1")
	b := event.Builder{RoomID: "!r:remote.example", Type: "m.room.message", Sender: "@a:remote.example",
		PrevEvents: []string{"$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}, Depth: 7}
	ev, err := b.Build(rules, "remote.example", key.KeyID(), key.PrivateKey())
	if err != nil {
		panic(err)
	}
	nothingKnown := func(_ context.Context, ids []string) ([]bool, error) { return make([]bool, len(ids)), nil }
	res, err := missing.Walk(context.Background(), silent{}, missing.WalkRequest{
		Rules: rules, Event: ev, Servers: []string{"remote.example"}, Known: nothingKnown,
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(len(res.Events), res.Missing)
	// Output:
	// 0 [$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA]
}
