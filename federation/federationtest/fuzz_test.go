package federationtest_test

import (
	"context"
	"net/url"
	"testing"

	"github.com/gomatrixlib/gomatrixlib/federation/federationtest"
	"github.com/gomatrixlib/gomatrixlib/roomtest"
)

// FuzzDefault feeds arbitrary bodies and parameters to the default answers
// of the endpoints that read them: no input may panic, and a room never
// takes an event that did not verify.
func FuzzDefault(f *testing.F) {
	room := roomtest.New(f, roomtest.Options{Creator: alice})
	srv := federationtest.New(f, federationtest.Options{Name: remote, Rooms: []*roomtest.Room{room}})
	msg, err := room.Build(roomtest.Event{Type: "m.room.message", Sender: alice, Content: `{"body":"x"}`})
	if err != nil {
		f.Fatal(err)
	}
	join, err := room.Build(roomtest.Event{Type: "m.room.member", Sender: bob, StateKey: roomtest.Str(bob), Content: `{"membership":"join"}`})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(uint8(0), `{"pdus":[`+string(msg.JSON())+`]}`, msg.EventID(), "limit=3")
	f.Add(uint8(1), string(join.JSON()), join.EventID(), "")
	f.Add(uint8(2), `{"event":`+string(join.JSON())+`,"room_version":"12"}`, join.EventID(), "")
	f.Add(uint8(3), `{"earliest_events":[],"latest_events":["`+room.Last().EventID()+`"],"limit":5}`, "", "")
	f.Add(uint8(4), ``, room.Last().EventID(), "v="+url.QueryEscape(room.Last().EventID())+"&limit=2")
	f.Add(uint8(5), ``, "", "event_id="+url.QueryEscape(room.Last().EventID()))
	f.Add(uint8(6), ``, "", "ver=12")
	eps := []federationtest.Endpoint{federationtest.Send, federationtest.SendJoin, federationtest.Invite,
		federationtest.GetMissingEvents, federationtest.Backfill, federationtest.StateIDs, federationtest.MakeJoin,
		federationtest.SendLeave, federationtest.SendKnock, federationtest.EventAuth, federationtest.QueryProfile}
	before := room.Len()
	f.Fuzz(func(t *testing.T, which uint8, body, eventID, query string) {
		q, _ := url.ParseQuery(query)
		req := &federationtest.Request{Endpoint: eps[int(which)%len(eps)], Body: []byte(body), Query: q,
			RoomID: room.ID, EventID: eventID, UserID: bob, Origin: "fuzz.test", Context: context.Background()}
		resp := srv.Default(req)
		if resp.Status != 0 && (resp.Status < 200 || resp.Status > 599) {
			t.Fatalf("status %d", resp.Status)
		}
		// Only the seeds' correctly signed message and join may enter.
		if n := room.Len(); n > before+2 {
			t.Fatalf("room grew to %d events", n)
		}
	})
}
