package roomtest_test

import (
	"context"
	"errors"
	"testing"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/eventauth"
	"github.com/gomatrixlib/gomatrixlib/roomtest"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
	"github.com/gomatrixlib/gomatrixlib/signing"
	"github.com/gomatrixlib/gomatrixlib/stateres"
)

// The room is what stateres and signing ask for.
var (
	_ stateres.Provider         = (*roomtest.Room)(nil)
	_ stateres.RejectionTracker = (*roomtest.Room)(nil)
	_ signing.KeyLookup         = (*roomtest.Room)(nil)
	_ signing.KeyLookup         = (*roomtest.Keyring)(nil)
)

const (
	alice = roomtest.DefaultCreator
	bob   = "@bob:b.test"
	carol = "@carol:c.test"
	dave  = "@dave:b.test"
	erin  = "@erin:c.test"
)

// everyKind builds one room with every kind of event the kit offers and
// returns them by kind.
func everyKind(t *testing.T, rules roomversion.Rules) (*roomtest.Room, map[string]*event.PDU) {
	r := roomtest.New(t, roomtest.Options{Version: rules.ID})
	kinds := map[string]*event.PDU{}
	all := r.All()
	kinds["create"], kinds["creator join"], kinds["power levels"], kinds["join rules"] = all[0], all[1], all[2], all[3]
	kinds["join"] = r.Join(bob)
	kinds["power level change"] = r.SetPowerLevel(alice, bob, 50)
	kinds["invite"] = r.Invite(alice, carol)
	kinds["invited join"] = r.Join(carol)
	kinds["message"] = r.Message(carol, "hello")
	kinds["redaction"] = r.Redact(bob, kinds["message"].EventID())
	kinds["kick"] = r.Kick(bob, carol)
	kinds["ban"] = r.Ban(alice, dave)
	kinds["unban"] = r.Unban(alice, dave)
	kinds["topic"] = r.SetState(bob, "m.room.topic", "", map[string]any{"topic": "kit"})
	kinds["join rule change"] = r.SetJoinRule(alice, "invite")
	if rules.Knocking {
		r.SetJoinRule(alice, "knock")
		kinds["knock"] = r.Knock(erin)
		kinds["invite after knock"] = r.Invite(bob, erin)
		kinds["join after knock"] = r.Join(erin)
	}
	if rules.RestrictedJoins {
		// A restricted join authorised by alice: signed by her server too.
		r.SetJoinRule(alice, "restricted")
		kinds["restricted join"] = r.Add(roomtest.Event{Type: "m.room.member", Sender: "@frank:f.test", StateKey: roomtest.Str("@frank:f.test"),
			Content: map[string]any{"membership": "join", "join_authorised_via_users_server": alice}})
	}
	kinds["leave"] = r.Leave(bob)
	// A fork: two branches from one event, each changing the topic, then
	// resolved and merged.
	fork := r.Fork()
	kinds["topic on main"] = r.SetState(alice, "m.room.topic", "", map[string]any{"topic": "main"})
	kinds["topic on fork"] = fork.SetState(alice, "m.room.topic", "", map[string]any{"topic": "fork"})
	resolved, err := stateres.Resolve(context.Background(), rules,
		[]map[eventauth.StateKey]string{r.StateIDs(), fork.StateIDs()}, r)
	if err != nil {
		t.Fatal(err)
	}
	r.Merge(resolved, fork)
	kinds["merge"] = r.Message(alice, "merged")
	if got := len(kinds["merge"].PrevEventIDs()); got != 2 {
		t.Fatalf("merge event has %d prev events, want 2", got)
	}
	return r, kinds
}

// TestEveryVersionEveryKind: every event the kit builds without a forgery
// passes event.Parse, signing.VerifyEvent and eventauth.CheckAuthEvents,
// in every room version.
func TestEveryVersionEveryKind(t *testing.T) {
	t.Parallel()
	for _, rules := range roomversion.All() {
		t.Run("v"+rules.ID, func(t *testing.T) {
			t.Parallel()
			r, kinds := everyKind(t, rules)
			want := 19
			if rules.Knocking {
				want += 3
			}
			if rules.RestrictedJoins {
				want++
			}
			if len(kinds) != want {
				t.Fatalf("%d kinds, want %d", len(kinds), want)
			}
			ctx := context.Background()
			for kind, ev := range kinds {
				if r.Event(ev.EventID()) != ev {
					t.Errorf("%s: not kept by ID", kind)
				}
			}
			for _, ev := range r.All() {
				if _, err := event.Parse(rules, ev.JSON()); err != nil {
					t.Errorf("%s: Parse: %v", ev.Type(), err)
				}
				if err := signing.VerifyEvent(ctx, rules, ev.JSON(), r); err != nil {
					t.Errorf("%s by %s: VerifyEvent: %v", ev.Type(), ev.Sender(), err)
				}
				if ev.RoomID() != "" && ev.RoomID() != r.ID {
					t.Errorf("%s: room %s, want %s", ev.Type(), ev.RoomID(), r.ID)
				}
				if _, err := eventauth.CheckAuthEvents(ev, r.AuthEvents(ev), eventauth.Options{Create: r.CreateEvent()}); err != nil {
					t.Errorf("%s by %s: CheckAuthEvents: %v", ev.Type(), ev.Sender(), err)
				}
				if err := eventauth.Check(ev, r.StateBefore(ev.EventID())); err != nil && ev.Type() != "m.room.create" {
					t.Errorf("%s by %s: Check against the state before: %v", ev.Type(), ev.Sender(), err)
				}
			}
		})
	}
}

// TestStateAfterEachEvent: the state after an event holds that event, and
// the state before a message equals the state after it.
func TestStateAfterEachEvent(t *testing.T) {
	t.Parallel()
	r := roomtest.New(t, roomtest.Options{})
	j := r.Join(bob)
	m := r.Message(bob, "hi")
	l := r.Leave(bob)
	if got := r.StateAfter(j.EventID()).Member(bob); got != j {
		t.Fatalf("state after the join has member %v", got)
	}
	if got := r.StateAfter(m.EventID()).Member(bob); got != j {
		t.Fatalf("state after the message has member %v", got)
	}
	if got := r.StateBefore(l.EventID()).Member(bob); got != j {
		t.Fatalf("state before the leave has member %v", got)
	}
	if got := r.StateAfter(l.EventID()).Member(bob); got != l {
		t.Fatalf("state after the leave has member %v", got)
	}
	if r.StateAfter("$unknown") != nil {
		t.Fatal("state after an unknown event")
	}
	// Many state events: the snapshots are kept in chains with full maps
	// every so often; every one must still be exact.
	var users []string
	var joins []*event.PDU
	for i := range 150 {
		u := "@u" + string(rune('a'+i%26)) + string(rune('a'+i/26)) + ":b.test"
		users = append(users, u)
		joins = append(joins, r.Join(u))
	}
	for i, j := range joins {
		st := r.StateAfter(j.EventID())
		for k, u := range users {
			if got := st.Member(u); (k <= i) != (got != nil) {
				t.Fatalf("after join %d: member %d present=%v", i, k, got != nil)
			}
		}
	}
	// create (not cited from room version 12), creator join, power
	// levels, join rules
	want := 3
	if r.Rules.CreateEventInAuthEvents {
		want = 4
	}
	if chain := r.AuthChain(joins[len(joins)-1].EventID()); len(chain) != want {
		t.Fatalf("auth chain of a join has %d events, want %d", len(chain), want)
	}
}

// TestNotAllowed: an event the rules reject is refused unless Unchecked.
func TestNotAllowed(t *testing.T) {
	t.Parallel()
	for _, rules := range roomversion.All() {
		r := roomtest.New(t, roomtest.Options{Version: rules.ID, JoinRule: "invite"})
		_, err := r.Send(roomtest.Event{Type: "m.room.member", Sender: bob, StateKey: roomtest.Str(bob), Content: `{"membership":"join"}`})
		if !errors.Is(err, roomtest.ErrNotAllowed) || !errors.Is(err, eventauth.ErrJoin) {
			t.Fatalf("v%s: join of an invite-only room: %v", rules.ID, err)
		}
		n := r.Len()
		ev, err := r.Send(roomtest.Event{Type: "m.room.message", Sender: bob, Unchecked: true})
		if err != nil || r.Len() != n+1 {
			t.Fatalf("v%s: unchecked message: %v", rules.ID, err)
		}
		if err := eventauth.Check(ev, r.StateBefore(ev.EventID())); !errors.Is(err, eventauth.ErrNotJoined) {
			t.Fatalf("v%s: unchecked message from a stranger: %v", rules.ID, err)
		}
	}
}

// TestKeysShared: rooms sharing a keyring sign with the same keys, and
// keys are the same across keyrings (derived from the server name).
func TestKeysShared(t *testing.T) {
	t.Parallel()
	k1, k2 := roomtest.NewKeyring(), roomtest.NewKeyring()
	if !k1.Key("x.test").Public().Equal(k2.Key("x.test").Public()) {
		t.Fatal("derived keys differ between keyrings")
	}
	if k1.Key("x.test").Public().Equal(k1.Key("y.test").Public()) {
		t.Fatal("two servers share a key")
	}
	if _, err := k1.VerifyKey(context.Background(), "never.test", roomtest.KeyID, timeZero); !errors.Is(err, signing.ErrUnknownKey) {
		t.Fatalf("unknown server: %v", err)
	}
}
