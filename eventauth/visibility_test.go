package eventauth

import (
	"testing"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
)

func TestHistoryVisibility(t *testing.T) {
	rules, err := roomversion.Get(roomversion.Default)
	if err != nil {
		t.Fatal(err)
	}
	r := newTestRoom(t, rules)
	r.add(r.build(eventSpec{Type: typeCreate, Sender: "@a:x", StateKey: sk(""), Content: `{}`}))
	hv := func(content string) *event.PDU {
		return r.build(eventSpec{Type: typeHistoryVisibility, Sender: "@a:x", StateKey: sk(""), Content: content})
	}
	for content, want := range map[string]string{
		`{"history_visibility":"world_readable"}`: VisibilityWorldReadable,
		`{"history_visibility":"shared"}`:         VisibilityShared,
		`{"history_visibility":"invited"}`:        VisibilityInvited,
		`{"history_visibility":"joined"}`:         VisibilityJoined,
		`{"history_visibility":"secret"}`:         VisibilityShared,
		`{"history_visibility":1}`:                VisibilityShared,
		`{}`:                                      VisibilityShared,
	} {
		if got := HistoryVisibility(hv(content)); got != want {
			t.Errorf("%s: got %q, want %q", content, got, want)
		}
	}
	if got := HistoryVisibility(nil); got != VisibilityShared {
		t.Errorf("no event: got %q", got)
	}
}

func TestUserMaySee(t *testing.T) {
	rules, err := roomversion.Get(roomversion.Default)
	if err != nil {
		t.Fatal(err)
	}
	const u = "@u:y"
	type tc struct {
		name        string
		vis         string // "" for no history visibility event
		membership  string // user's membership before the event ("" none)
		joinedLater bool
		ev          eventSpec // zero: a message
		want        bool
	}
	msg := eventSpec{Type: "m.room.message", Sender: "@a:x", Content: `{}`}
	hvEv := func(v string) eventSpec {
		return eventSpec{Type: typeHistoryVisibility, Sender: "@a:x", StateKey: sk(""), Content: `{"history_visibility":"` + v + `"}`}
	}
	own := func(m string) eventSpec {
		return eventSpec{Type: typeMember, Sender: u, StateKey: sk(u), Content: `{"membership":"` + m + `"}`}
	}
	cases := []tc{
		{"world_readable to a stranger", "world_readable", "", false, msg, true},
		{"shared to a stranger who never joins", "shared", "", false, msg, false},
		{"shared to a stranger who joins later", "shared", "", true, msg, true},
		{"default (shared) to a user who joins later", "", "", true, msg, true},
		{"unknown value acts as shared", "secret", "", true, msg, true},
		{"joined to a member", "joined", "join", false, msg, true},
		{"joined to an invitee", "joined", "invite", true, msg, false},
		{"joined to someone who joins later", "joined", "", true, msg, false},
		{"invited to an invitee", "invited", "invite", false, msg, true},
		{"invited to a knocker", "invited", "knock", true, msg, false},
		{"invited to someone who left", "invited", "leave", true, msg, false},
		{"shared to a banned user who joined before", "shared", "ban", false, msg, false},
		{"joined: change to world_readable is visible", "joined", "", false, hvEv("world_readable"), true},
		{"world_readable: change to joined is visible", "world_readable", "", false, hvEv("joined"), true},
		{"joined: change to invited is not visible to a stranger", "joined", "", false, hvEv("invited"), false},
		{"joined: own join event is visible", "joined", "", false, own("join"), true},
		{"joined: own leave after join is visible", "joined", "join", false, own("leave"), true},
		{"joined: own invite is not visible", "joined", "", false, own("invite"), false},
		{"invited: own invite is visible", "invited", "", false, own("invite"), true},
	}
	for _, c := range cases {
		r := newTestRoom(t, rules)
		r.add(r.build(eventSpec{Type: typeCreate, Sender: "@a:x", StateKey: sk(""), Content: `{}`}))
		if c.vis != "" {
			r.add(r.build(hvEv(c.vis)))
		}
		if c.membership != "" {
			r.add(r.build(eventSpec{Type: typeMember, Sender: "@a:x", StateKey: sk(u),
				Content: `{"membership":"` + c.membership + `"}`}))
		}
		ev := r.build(c.ev)
		if got := UserMaySee(ev, r.state, Viewer{UserID: u, JoinedLater: c.joinedLater}); got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}

func TestServerMaySee(t *testing.T) {
	rules, err := roomversion.Get(roomversion.Default)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		vis     string
		members map[string]string
		ev      eventSpec
		server  string
		want    bool
	}{
		{"shared", "shared", nil, eventSpec{}, "y", true},
		{"world_readable", "world_readable", nil, eventSpec{}, "y", true},
		{"joined with a joined user", "joined", map[string]string{"@u:y": "join"}, eventSpec{}, "y", true},
		{"joined with an invited user", "joined", map[string]string{"@u:y": "invite"}, eventSpec{}, "y", false},
		{"joined with a user of another server", "joined", map[string]string{"@u:z": "join"}, eventSpec{}, "y", false},
		{"invited with an invited user", "invited", map[string]string{"@u:y": "invite", "@v:y": "leave"}, eventSpec{}, "y", true},
		{"invited with users who left", "invited", map[string]string{"@u:y": "leave", "@v:y": "ban"}, eventSpec{}, "y", false},
		{"joined: the server's user joins with this event", "joined", nil,
			eventSpec{Type: typeMember, Sender: "@u:y", StateKey: sk("@u:y"), Content: `{"membership":"join"}`}, "y", true},
		{"joined: visibility opened by this event", "joined", nil,
			eventSpec{Type: typeHistoryVisibility, Sender: "@a:x", StateKey: sk(""), Content: `{"history_visibility":"shared"}`}, "y", true},
	}
	for _, c := range cases {
		r := newTestRoom(t, rules)
		r.add(r.build(eventSpec{Type: typeCreate, Sender: "@a:x", StateKey: sk(""), Content: `{}`}))
		r.add(r.build(eventSpec{Type: typeHistoryVisibility, Sender: "@a:x", StateKey: sk(""),
			Content: `{"history_visibility":"` + c.vis + `"}`}))
		for u, m := range c.members {
			r.add(r.build(eventSpec{Type: typeMember, Sender: "@a:x", StateKey: sk(u), Content: `{"membership":"` + m + `"}`}))
		}
		spec := c.ev
		if spec.Type == "" {
			spec = eventSpec{Type: "m.room.message", Sender: "@a:x", Content: `{}`}
		}
		if got := ServerMaySee(r.build(spec), r.state, c.server); got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}

func TestVisibilityNilState(t *testing.T) {
	rules, err := roomversion.Get(roomversion.Default)
	if err != nil {
		t.Fatal(err)
	}
	r := newTestRoom(t, rules)
	r.add(r.build(eventSpec{Type: typeCreate, Sender: "@a:x", StateKey: sk(""), Content: `{}`}))
	msg := r.build(eventSpec{Type: "m.room.message", Sender: "@a:x", Content: `{}`})
	// No history visibility event: shared.
	if UserMaySee(msg, nil, Viewer{UserID: "@u:y"}) || !UserMaySee(msg, nil, Viewer{UserID: "@u:y", JoinedLater: true}) {
		t.Fatal("nil state is not an empty (shared) state for users")
	}
	if !ServerMaySee(msg, nil, "y") {
		t.Fatal("nil state is not an empty (shared) state for servers")
	}
}
