package federationtest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/gomatrixlib/gomatrixlib/federation/federationtest"
	"github.com/gomatrixlib/gomatrixlib/roomtest"
	"github.com/gomatrixlib/gomatrixlib/signing"
)

// A hostile server answers send_join with a state event whose signature
// was spoiled; the joining side (here the library's signature check)
// must reject it.
func Example_forgedSendJoin() {
	room := roomtest.New(nil, roomtest.Options{Creator: "@alice:remote.test"})
	remote := federationtest.New(nil, federationtest.Options{Name: "remote.test", Rooms: []*roomtest.Room{room}})
	defer remote.Close()
	forged := room.Forge(roomtest.BadSignature, roomtest.Event{Type: "m.room.topic",
		Sender: room.Creator(), StateKey: roomtest.Str(""), Content: `{"topic":"evil"}`})
	remote.Handle(federationtest.SendJoin, func(req *federationtest.Request) federationtest.Response {
		resp := remote.Default(req)
		body := resp.Body.(*federationtest.SendJoinResponse)
		body.State = append(body.State, forged.JSON)
		return resp
	})

	join, _ := room.Build(roomtest.Event{Type: "m.room.member", Sender: "@bob:hs.test",
		StateKey: roomtest.Str("@bob:hs.test"), Content: `{"membership":"join"}`})
	client := remote.Network.FederationClient("hs.test", nil)
	raw, err := client.SendJoin(context.Background(), "remote.test", room.ID, join.EventID(), join.JSON())
	var resp federationtest.SendJoinResponse
	if err == nil {
		err = json.Unmarshal(raw, &resp)
	}
	for _, ev := range resp.State {
		if err := signing.VerifyEvent(context.Background(), room.Rules, ev, remote.Network); err != nil {
			fmt.Println("rejected:", errors.Is(err, signing.ErrBadSignature))
		}
	}
	fmt.Println(len(resp.State), "state events,", err)
	// Output:
	// rejected: true
	// 5 state events, <nil>
}
