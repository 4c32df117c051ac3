package membership

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/roomtest"
)

// fuzzRoom is a v10 room with a join template for bob and his join.
func fuzzRoom(f *testing.F) (*roomtest.Room, []byte, *event.PDU) {
	r := newRoom(f, "10")
	return r, template(f, r, bob, Join).Event, buildJoin(f, r)
}

func FuzzParseMakeResponse(f *testing.F) {
	r, tmpl, _ := fuzzRoom(f)
	body, _ := json.Marshal(Template{RoomVersion: "10", Event: tmpl})
	f.Add(body)
	f.Add([]byte(`{"event":{}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		rules, raw, err := ParseMakeResponse(body, nil)
		if err != nil {
			if !errors.Is(err, ErrBadResponse) && !errors.Is(err, ErrUnsupportedRoomVersion) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		ev, err := BuildEvent(BuildRequest{Rules: rules, Template: raw, RoomID: r.ID, UserID: bob, Membership: Join, ServerName: "b.test", Key: r.Keys.Key("b.test")})
		if err != nil {
			return
		}
		// What was built is the event we asked for.
		if sk, _ := ev.StateKey(); ev.Type() != "m.room.member" || ev.RoomID() != r.ID || ev.Sender() != bob || sk != bob || ev.Membership() != Join {
			t.Fatalf("built another event: %s", ev.JSON())
		}
	})
}

func FuzzCheckSendJoinResponse(f *testing.F) {
	r, _, join := fuzzRoom(f)
	f.Add(sendJoinAnswer(r, nil))
	f.Add([]byte(`{"state":[],"auth_chain":[]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		jr, err := CheckSendJoinResponse(context.Background(), SendJoinCheck{Rules: r.Rules, Join: join, Response: body, Keys: r, MaxEvents: 64})
		if err != nil {
			if !errors.Is(err, ErrBadResponse) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if jr.State.Create() == nil {
			t.Fatal("accepted without a create event")
		}
		for _, ev := range jr.StateEvents {
			if ev.RoomID() != r.ID {
				t.Fatal("accepted an event of another room")
			}
		}
	})
}

func FuzzCheckInviteRoomState(f *testing.F) {
	r, _, _ := fuzzRoom(f)
	f.Add([]byte(`[{"type":"m.room.create","content":{"room_version":"10"}}]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var list []json.RawMessage
		if json.Unmarshal(body, &list) != nil {
			return
		}
		if err := CheckInviteRoomState(r.Rules, r.ID, list); err != nil && !errors.Is(err, ErrInviteRoomState) {
			t.Fatalf("untyped error %v", err)
		}
	})
}

func FuzzCheckSignRequest(f *testing.F) {
	r, _, join := fuzzRoom(f)
	f.Add(join.JSON(), "join")
	f.Add([]byte(`{"type":"m.room.member"}`), "invite")
	f.Fuzz(func(t *testing.T, body []byte, membership string) {
		req := SignRequest{Rules: r.Rules, Origin: "b.test", OurServer: "a.test", RoomID: r.ID, Membership: membership, Event: body, Keys: r}
		ev, err := CheckSignRequest(context.Background(), req)
		if err != nil {
			var me *Error
			if !errors.As(err, &me) || me.Status == 0 || me.Errcode == "" {
				t.Fatalf("untyped error %v", err)
			}
		} else if sk, _ := ev.StateKey(); ev.Type() != "m.room.member" || sk != ev.Sender() || ev.RoomID() != r.ID || ev.Membership() != membership {
			t.Fatalf("accepted %s", body)
		}
		inv := InviteRequest{RoomVersion: "10", Origin: "a.test", OurServer: "b.test", RoomID: r.ID, Event: body, Keys: r}
		if ev, _, err := CheckInvite(context.Background(), inv); err == nil && ev.Membership() != Invite {
			t.Fatalf("accepted a non-invite %s", body)
		}
	})
}

func FuzzCheckInviteResponse(f *testing.F) {
	r := newRoom(f, "10")
	inv, err := r.Build(member(alice, bob, "invite", nil))
	if err != nil {
		f.Fatal(err)
	}
	signed, err := Countersign(inv, "b.test", r.Keys.Key("b.test"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(signed.JSON())
	f.Add(inv.JSON())
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := CheckInviteResponse(context.Background(), r.Rules, inv, body, r)
		if err != nil {
			if !errors.Is(err, ErrBadResponse) && !errors.Is(err, ErrSignature) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if ev.EventID() != inv.EventID() || string(ev.Content()) != string(inv.Content()) {
			t.Fatalf("accepted another event: %s", body)
		}
	})
}
