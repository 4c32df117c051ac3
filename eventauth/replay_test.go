package eventauth

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
)

// replayStep is one event of the realistic room with its expected verdict:
// want is nil for allowed, else the family sentinel of the rejection.
type replayStep struct {
	what string
	ev   *event.PDU
	auth []*event.PDU
	want error
}

// realisticRoom plays the life of a busy room in one room version: creation,
// a crowd joining from several servers, chatter, power level changes,
// invites, knocks, restricted joins, bans, kicks and redactions, with
// forbidden attempts mixed in. Each event is built against the current
// state; accepted state events update it. The expected verdicts are written
// from the spec (and the version's feature flags), not computed by Check.
func realisticRoom(t testing.TB, rules roomversion.Rules) []replayStep {
	roomCache.Lock()
	defer roomCache.Unlock()
	if roomCache.m == nil {
		roomCache.m = map[string][]replayStep{}
	}
	if steps, ok := roomCache.m[rules.ID]; ok {
		return steps
	}
	steps := buildRealisticRoom(t, rules)
	roomCache.m[rules.ID] = steps
	return steps
}

// roomCache keeps each version's realistic room for the test binary's
// lifetime: several tests replay the same rooms, and building one signs
// hundreds of events. Test-only; the events are immutable.
var roomCache struct {
	sync.Mutex
	m map[string][]replayStep
}

func buildRealisticRoom(t testing.TB, rules roomversion.Rules) []replayStep {
	r := newTestRoom(t, rules)
	var steps []replayStep
	step := func(what string, spec eventSpec, want error) *event.PDU {
		ev := r.build(spec)
		steps = append(steps, replayStep{what: what, ev: ev, auth: r.authEventsOf(ev), want: want})
		if want == nil {
			r.add(ev)
		}
		return ev
	}
	// ifv returns ok when the version has the feature, else the rejection.
	ifv := func(has bool, otherwise error) error {
		if has {
			return nil
		}
		return otherwise
	}
	member := func(sender, target, membership, extra string) eventSpec {
		content := `{"membership":"` + membership + `"` + extra + `}`
		return eventSpec{Type: typeMember, Sender: sender, StateKey: sk(target), Content: content}
	}
	msg := func(sender string, n int) eventSpec {
		return eventSpec{Type: "m.room.message", Sender: sender,
			Content: fmt.Sprintf(`{"msgtype":"m.text","body":"message %d"}`, n)}
	}
	stateEv := func(typ, sender, key, content string) eventSpec {
		return eventSpec{Type: typ, Sender: sender, StateKey: sk(key), Content: content}
	}
	plContent := func(users map[string]int64, extra string) string {
		u := map[string]int64{}
		for k, v := range users {
			u[k] = v
		}
		if !rules.PrivilegedCreators {
			u["@alice:a.test"] = 100
		}
		return `{"users":` + mustJSON(u) + `,"events":{"m.room.power_levels":100,"m.room.history_visibility":100,"m.room.tombstone":150}` + extra + `}`
	}

	const alice = "@alice:a.test"
	step("create", eventSpec{Type: typeCreate, Sender: alice, StateKey: sk(""),
		Content: `{"creator":"@alice:a.test","room_version":"` + rules.ID + `"}`}, nil)
	step("creator joins", member(alice, alice, "join", ""), nil)
	mods := map[string]int64{"@mod:a.test": 50}
	step("initial power levels", stateEv(typePowerLevels, alice, "", plContent(mods, "")), nil)
	step("public join rule", stateEv(typeJoinRules, alice, "", `{"join_rule":"public"}`), nil)
	step("history visibility", stateEv(typeHistoryVisibility, alice, "", `{"history_visibility":"shared"}`), nil)
	step("topic", stateEv("m.room.topic", alice, "", `{"topic":"a busy room"}`), nil)
	step("mod joins", member("@mod:a.test", "@mod:a.test", "join", ""), nil)

	// A crowd joins from five servers and chats.
	var crowd []string
	for i := 0; i < 60; i++ {
		u := fmt.Sprintf("@user%d:s%d.test", i, i%5)
		crowd = append(crowd, u)
		step("crowd join", member(u, u, "join", `,"displayname":"User `+fmt.Sprint(i)+`"`), nil)
	}
	for i := 0; i < 150; i++ {
		step("chatter", msg(crowd[(i*7)%len(crowd)], i), nil)
		if i%15 == 0 {
			step("message from outsider", msg(fmt.Sprintf("@lurker%d:x.test", i), i), ErrNotJoined)
		}
		if i%25 == 0 {
			step("member sets the topic", stateEv("m.room.topic", crowd[i%len(crowd)], "", `{"topic":"mine"}`), ErrPowerLevel)
		}
	}

	// Power level changes.
	mods["@user1:s1.test"] = 50
	step("alice promotes user1", stateEv(typePowerLevels, alice, "", plContent(mods, "")), nil)
	over := map[string]int64{"@mod:a.test": 50, "@user1:s1.test": 50, "@user2:s2.test": 75}
	step("mod tries to change power levels", stateEv(typePowerLevels, "@mod:a.test", "", plContent(over, "")), ErrPowerLevel)
	step("user1 sets a room name", stateEv("m.room.name", "@user1:s1.test", "", `{"name":"Busy"}`), nil)
	if rules.PrivilegedCreators {
		step("alice lists herself in power levels", stateEv(typePowerLevels, alice, "",
			`{"users":{"@alice:a.test":100}}`), ErrPowerLevels)
	}

	// Bans, kicks and what banned users cannot do.
	step("mod bans user3", member("@mod:a.test", "@user3:s3.test", "ban", `,"reason":"spam"`), nil)
	step("banned user3 talks", msg("@user3:s3.test", 1000), ErrNotJoined)
	step("banned user3 rejoins", member("@user3:s3.test", "@user3:s3.test", "join", ""), ErrJoin)
	step("user4 bans user5", member("@user4:s4.test", "@user5:s0.test", "ban", ""), ErrBan)
	step("mod kicks user6", member("@mod:a.test", "@user6:s1.test", "leave", ""), nil)
	step("user6 rejoins the public room", member("@user6:s1.test", "@user6:s1.test", "join", ""), nil)
	step("mod kicks alice", member("@mod:a.test", alice, "leave", ""), ErrLeave)
	step("user7 leaves", member("@user7:s2.test", "@user7:s2.test", "leave", ""), nil)
	step("user7 leaves again", member("@user7:s2.test", "@user7:s2.test", "leave", ""), ErrLeave)

	// Redactions.
	victim := step("spam", msg("@user8:s3.test", 2000), nil)
	step("alice redacts the spam", eventSpec{Type: typeRedaction, Sender: alice, Redacts: victim.EventID(),
		Content: `{"reason":"spam"}`}, nil)
	other := step("message to redact", msg("@user9:s4.test", 2001), nil)
	// user10 is on s0.test: another server than the redacted event's, and
	// below the redact level: only room versions 1-2 reject in auth.
	step("user10 redacts someone else's message", eventSpec{Type: typeRedaction, Sender: "@user10:s0.test",
		Redacts: other.EventID()}, ifv(!rules.RedactionAuthRule, ErrRedaction))
	own := step("message to self-redact", msg("@user11:s1.test", 2002), nil)
	step("user11 redacts their own message", eventSpec{Type: typeRedaction, Sender: "@user11:s1.test",
		Redacts: own.EventID()}, nil)

	// Invite-only phase.
	step("invite-only", stateEv(typeJoinRules, alice, "", `{"join_rule":"invite"}`), nil)
	for i := 0; i < 15; i++ {
		u := fmt.Sprintf("@guest%d:g.test", i)
		step("uninvited join", member(u, u, "join", ""), ErrJoin)
		step("alice invites", member(alice, u, "invite", ""), nil)
		if i%5 == 4 {
			step("guest declines", member(u, u, "leave", ""), nil)
			continue
		}
		step("invited join", member(u, u, "join", ""), nil)
		step("guest says hi", msg(u, 3000+i), nil)
	}
	step("outsider invites", member("@eve:e.test", "@eve2:e.test", "invite", ""), ErrInvite)
	step("alice invites a member", member(alice, "@user12:s2.test", "invite", ""), ErrInvite)

	// Knocking phase.
	step("knock join rule", stateEv(typeJoinRules, alice, "", `{"join_rule":"knock"}`), nil)
	for i := 0; i < 12; i++ {
		u := fmt.Sprintf("@knocker%d:k.test", i)
		step("knock", member(u, u, "knock", `,"reason":"let me in"`), ifv(rules.Knocking, ErrMembership))
		step("alice invites the knocker", member(alice, u, "invite", ""), nil)
		step("knocker joins", member(u, u, "join", ""), ifv(rules.Knocking, ErrJoin))
		if !rules.Knocking {
			// "knock" is not a join rule before version 7: the invite does
			// not let them in.
			continue
		}
		step("knocker talks", msg(u, 4000+i), nil)
	}
	step("banned user3 knocks", member("@user3:s3.test", "@user3:s3.test", "knock", ""), pickErr(rules.Knocking, ErrKnock, ErrMembership))

	// Restricted phase.
	step("restricted join rule", stateEv(typeJoinRules, alice, "",
		`{"join_rule":"restricted","allow":[{"type":"m.room_membership","room_id":"!space:a.test"}]}`), nil)
	for i := 0; i < 12; i++ {
		u := fmt.Sprintf("@space%d:p.test", i)
		via := `,"join_authorised_via_users_server":"@alice:a.test"`
		step("restricted join via alice", eventSpec{Type: typeMember, Sender: u, StateKey: sk(u),
			Content: `{"membership":"join"` + via + `}`, Cosign: []string{"a.test"}}, ifv(rules.RestrictedJoins, ErrJoin))
		step("restricted join without authoriser", member(u+"x", u+"x", "join", ""), ErrJoin)
		if rules.RestrictedJoins {
			step("space member talks", msg(u, 5000+i), nil)
		}
	}
	step("restricted join via user0 (invite level 0)", eventSpec{Type: typeMember, Sender: "@late:p.test",
		StateKey: sk("@late:p.test"), Cosign: []string{"s0.test"},
		Content: `{"membership":"join","join_authorised_via_users_server":"@user0:s0.test"}`}, ifv(rules.RestrictedJoins, ErrJoin))
	// Raise the invite level so that user0 lacks it, then check again.
	step("invite level 50", stateEv(typePowerLevels, alice, "", plContent(mods, `,"invite":50`)), nil)
	step("restricted join via user0 below the invite level", eventSpec{Type: typeMember, Sender: "@late2:p.test",
		StateKey: sk("@late2:p.test"), Cosign: []string{"s0.test"},
		Content: `{"membership":"join","join_authorised_via_users_server":"@user0:s0.test"}`}, ErrJoin)
	step("user1 (mod) invites", member("@user1:s1.test", "@late3:p.test", "invite", ""), nil)
	step("user2 (0) invites", member("@user2:s2.test", "@late4:p.test", "invite", ""), ErrInvite)

	// Closing: more chatter, a final ban of a knocker and unban.
	for i := 0; i < 40; i++ {
		step("late chatter", msg(crowd[(i*11)%len(crowd)], 6000+i), pickErr(crowd[(i*11)%len(crowd)] == "@user3:s3.test" ||
			crowd[(i*11)%len(crowd)] == "@user7:s2.test", ErrNotJoined, nil))
	}
	step("mod unbans user3 (mod has the ban level)", member("@mod:a.test", "@user3:s3.test", "leave", ""), nil)
	step("user3 talks after unban", msg("@user3:s3.test", 7000), ErrNotJoined)
	return steps
}

func pickErr(cond bool, a, b error) error {
	if cond {
		return a
	}
	return b
}

func TestReplayRealisticRoom(t *testing.T) {
	for _, rules := range roomversion.All() {
		t.Run("v"+rules.ID, func(t *testing.T) {
			t.Parallel()
			steps := realisticRoom(t, rules)
			if len(steps) < 300 {
				t.Fatalf("only %d events", len(steps))
			}
			r := newTestRoom(t, rules)
			accepted, rejected := 0, 0
			for i, s := range steps {
				_, err := CheckAuthEvents(s.ev, s.auth, Options{Create: r.create})
				err2 := Check(s.ev, r.state)
				for _, e := range []error{err, err2} {
					if s.want == nil && e != nil {
						t.Fatalf("event %d (%s): want allowed, got %v", i, s.what, e)
					}
					if s.want != nil && !errors.Is(e, s.want) {
						t.Fatalf("event %d (%s): want %v, got %v", i, s.what, s.want, e)
					}
				}
				if s.want == nil {
					r.add(s.ev)
					accepted++
				} else {
					rejected++
				}
			}
			if rejected < 30 || accepted < 300 {
				t.Fatalf("accepted %d, rejected %d: the scenario lost its mix", accepted, rejected)
			}
		})
	}
}
