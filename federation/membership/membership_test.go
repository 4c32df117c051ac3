package membership

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/eventauth"
	"github.com/gomatrixlib/gomatrixlib/roomtest"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
	"github.com/gomatrixlib/gomatrixlib/signing"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

const (
	alice = "@alice:a.test"
	bob   = "@bob:b.test"
)

func must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func wantErr(t *testing.T, what string, err error, sentinel error, status int, errcode string) {
	t.Helper()
	var me *Error
	if !errors.Is(err, sentinel) || !errors.As(err, &me) || me.Status != status || me.Errcode != errcode {
		t.Fatalf("%s: got %v (%+v), want %v %d %s", what, err, me, sentinel, status, errcode)
	}
}

func lookup(m eventauth.StateMap) func(eventauth.StateKey) *event.PDU {
	return func(k eventauth.StateKey) *event.PDU { return m[k] }
}

// newRoom is a public room created by alice on a.test.
func newRoom(t testing.TB, version string) *roomtest.Room {
	return roomtest.New(t, roomtest.Options{Version: version, Creator: alice})
}

func template(t testing.TB, r *roomtest.Room, user, membership string) *Template {
	t.Helper()
	return must[*Template](t)(BuildTemplate(TemplateRequest{Rules: r.Rules, RoomID: r.ID, UserID: user, Membership: membership,
		Origin: "a.test", Prev: []*event.PDU{r.Last()}, State: lookup(r.State())}))
}

// buildJoin builds bob's join from a template of r, as b.test.
func buildJoin(t testing.TB, r *roomtest.Room) *event.PDU {
	t.Helper()
	return must[*event.PDU](t)(BuildEvent(BuildRequest{Rules: r.Rules, Template: template(t, r, bob, Join).Event, RoomID: r.ID, UserID: bob,
		Membership: Join, ServerName: "b.test", Key: r.Keys.Key("b.test")}))
}

// sendJoinAnswer is what a resident answers: the state and the auth chain
// (here: every event of the room).
func sendJoinAnswer(r *roomtest.Room, mod func(state, chain []json.RawMessage) ([]json.RawMessage, []json.RawMessage)) []byte {
	var state, chain []json.RawMessage
	for _, ev := range r.State() {
		state = append(state, ev.JSON())
	}
	for _, ev := range r.All() {
		chain = append(chain, ev.JSON())
	}
	if mod != nil {
		state, chain = mod(state, chain)
	}
	b, _ := json.Marshal(map[string]any{"state": state, "auth_chain": chain})
	return b
}

// TestJoinFlow runs the whole handshake in several room versions: the
// resident checks make_join and builds a template, the joiner builds and
// signs its join, the resident checks and countersigns it, and the
// joiner checks the send_join answer.
func TestJoinFlow(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"1", "3", "8", "10", "12"} {
		t.Run("v"+v, func(t *testing.T) {
			t.Parallel()
			r := newRoom(t, v)
			r.SetState(alice, "m.room.topic", "", map[string]string{"topic": "t"})
			ctx := context.Background()
			if err := CheckMakeRequest(MakeRequest{Origin: "b.test", UserID: bob, Membership: Join, Versions: []string{"x", v}, Rules: r.Rules}); err != nil {
				t.Fatal(err)
			}
			body := must[[]byte](t)(json.Marshal(template(t, r, bob, Join)))
			rules, raw, err := ParseMakeResponse(body, nil)
			if err != nil || rules.ID != v {
				t.Fatal(rules.ID, err)
			}
			join := must[*event.PDU](t)(BuildEvent(BuildRequest{Rules: rules, Template: raw, RoomID: r.ID, UserID: bob, Membership: Join, ServerName: "b.test", Key: r.Keys.Key("b.test")}))

			got := must[*event.PDU](t)(CheckSignRequest(ctx, SignRequest{Rules: r.Rules, Origin: "b.test", OurServer: "a.test", RoomID: r.ID, EventID: join.EventID(), Membership: Join, Event: join.JSON(), Keys: r}))
			signed := must[*event.PDU](t)(Countersign(got, "a.test", r.Keys.Key("a.test")))
			if !gjson.GetBytes(signed.JSON(), "signatures.a\\.test").Exists() || signed.EventID() != join.EventID() {
				t.Fatal("not countersigned")
			}
			if err := signing.VerifyEvent(ctx, r.Rules, signed.JSON(), r); err != nil {
				t.Fatal(err)
			}

			answer := sendJoinAnswer(r, nil)
			answer, _ = sjson.SetRawBytes(answer, "event", signed.JSON())
			jr, err := CheckSendJoinResponse(ctx, SendJoinCheck{Rules: rules, Join: join, Response: answer, Keys: r})
			if err != nil {
				t.Fatal(err)
			}
			state := r.State()
			if len(jr.State) != len(state) || len(jr.Dropped) != 0 || len(jr.StateEvents) != len(state) {
				t.Fatalf("state %d of %d, dropped %v", len(jr.State), len(state), jr.Dropped)
			}
			for k, ev := range state {
				if jr.State[k] == nil || jr.State[k].EventID() != ev.EventID() {
					t.Fatalf("state entry %v differs", k)
				}
			}
			if !gjson.GetBytes(jr.Join.JSON(), "signatures.a\\.test").Exists() {
				t.Fatal("the countersigned join was not taken")
			}
			// The resident's room takes the join.
			if err := r.Receive(signed); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestCheckMakeRequest(t *testing.T) {
	t.Parallel()
	v10 := must[roomversion.Rules](t)(roomversion.Get("10"))
	v6 := must[roomversion.Rules](t)(roomversion.Get("6"))
	wantErr(t, "other server", CheckMakeRequest(MakeRequest{Origin: "b.test", UserID: "@bob:c.test", Membership: Join, Versions: []string{"10"}, Rules: v10}), ErrSenderNotOrigin, 403, "M_FORBIDDEN")
	err := CheckMakeRequest(MakeRequest{Origin: "b.test", UserID: bob, Membership: Join, Versions: []string{"1", "2", "11"}, Rules: v10})
	wantErr(t, "version not in ver", err, ErrIncompatibleRoomVersion, 400, "M_INCOMPATIBLE_ROOM_VERSION")
	var me *Error
	errors.As(err, &me)
	if b, _ := json.Marshal(me); me.RoomVersion != "10" || !strings.Contains(string(b), `"room_version":"10"`) || !strings.Contains(string(b), `"errcode":"M_INCOMPATIBLE_ROOM_VERSION"`) {
		t.Fatalf("body %s", b)
	}
	wantErr(t, "no ver", CheckMakeRequest(MakeRequest{Origin: "b.test", UserID: bob, Membership: Join, Rules: v10}), ErrIncompatibleRoomVersion, 400, "M_INCOMPATIBLE_ROOM_VERSION")
	wantErr(t, "knock without ver", CheckMakeRequest(MakeRequest{Origin: "b.test", UserID: bob, Membership: Knock, Rules: v10}), ErrIncompatibleRoomVersion, 400, "M_INCOMPATIBLE_ROOM_VERSION")
	wantErr(t, "knock in v6", CheckMakeRequest(MakeRequest{Origin: "b.test", UserID: bob, Membership: Knock, Versions: []string{"6"}, Rules: v6}), ErrNotAllowed, 403, "M_FORBIDDEN")
	wantErr(t, "bad user", CheckMakeRequest(MakeRequest{Origin: "b.test", UserID: "bob", Membership: Join, Rules: v10}), ErrBadEvent, 400, "M_INVALID_PARAM")
	wantErr(t, "bad membership", CheckMakeRequest(MakeRequest{Origin: "b.test", UserID: bob, Membership: "ban", Rules: v10}), ErrBadEvent, 400, "M_INVALID_PARAM")
	if err := CheckMakeRequest(MakeRequest{Origin: "b.test", UserID: bob, Membership: Leave, Rules: v10}); err != nil {
		t.Fatal(err)
	}
}

func TestBuildTemplateRefused(t *testing.T) {
	t.Parallel()
	r := newRoom(t, "10")
	r.Ban(alice, "@eve:b.test")
	req := TemplateRequest{Rules: r.Rules, RoomID: r.ID, UserID: "@eve:b.test", Membership: Join, Origin: "a.test",
		Prev: []*event.PDU{r.Last()}, State: lookup(r.State())}
	_, err := BuildTemplate(req)
	wantErr(t, "banned", err, ErrNotAllowed, 403, "M_FORBIDDEN")
	if !errors.Is(err, eventauth.ErrJoin) {
		t.Fatalf("no auth rule in %v", err)
	}
	r.SetJoinRule(alice, "invite")
	req.UserID, req.Prev, req.State = bob, []*event.PDU{r.Last()}, lookup(r.State())
	_, err = BuildTemplate(req)
	wantErr(t, "invite only", err, ErrNotAllowed, 403, "M_FORBIDDEN")
	// Leave for a user who is not in the room is refused too.
	req.Membership = Leave
	_, err = BuildTemplate(req)
	wantErr(t, "leave when absent", err, ErrNotAllowed, 403, "M_FORBIDDEN")
	req.Prev = nil
	_, err = BuildTemplate(req)
	wantErr(t, "no prev", err, ErrBadEvent, 400, "M_BAD_JSON")
	req.Prev, req.Content = []*event.PDU{r.Last()}, []byte(`[1]`)
	_, err = BuildTemplate(req)
	wantErr(t, "content not object", err, ErrBadEvent, 400, "M_BAD_JSON")
}

func TestBuildEventRefusesBadTemplates(t *testing.T) {
	t.Parallel()
	r := newRoom(t, "10")
	raw := []byte(template(t, r, bob, Join).Event)
	req := BuildRequest{Rules: r.Rules, RoomID: r.ID, UserID: bob, Membership: Join, ServerName: "b.test", Key: r.Keys.Key("b.test")}
	if _, err := BuildEvent(BuildRequest{Rules: r.Rules, Template: raw, RoomID: r.ID, UserID: bob, Membership: Join, ServerName: "b.test", Key: r.Keys.Key("b.test")}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, path, value string }{
		{"other sender", "sender", `"@eve:b.test"`},
		{"other state_key", "state_key", `"@eve:b.test"`},
		{"other room", "room_id", `"!other:a.test"`},
		{"other type", "type", `"m.room.message"`},
		{"other membership", "content.membership", `"leave"`},
		{"no depth", "depth", `"x"`},
		{"prev not list", "prev_events", `{}`},
		{"auth entry not string", "auth_events", `[1]`},
		{"too many auth", "auth_events", `["$a","$b","$c","$d","$e","$f","$g","$h","$i","$j","$k"]`},
		{"content not object", "content", `"x"`},
	} {
		bad, _ := sjson.SetRawBytes(raw, tc.path, []byte(tc.value))
		req.Template = bad
		if _, err := BuildEvent(req); !errors.Is(err, ErrBadResponse) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	req.Template = []byte(`[]`)
	if _, err := BuildEvent(req); !errors.Is(err, ErrBadResponse) {
		t.Error(err)
	}
}

func TestParseMakeResponse(t *testing.T) {
	t.Parallel()
	if r, tmpl, err := ParseMakeResponse([]byte(`{"event":{"a":1}}`), nil); err != nil || r.ID != "1" || string(tmpl) != `{"a":1}` {
		t.Fatal(r.ID, err)
	}
	_, _, err := ParseMakeResponse([]byte(`{"room_version":"99","event":{}}`), nil)
	wantErr(t, "unknown version", err, ErrUnsupportedRoomVersion, 400, "M_INCOMPATIBLE_ROOM_VERSION")
	_, _, err = ParseMakeResponse([]byte(`{"room_version":"12","event":{}}`), func(r roomversion.Rules) bool { return !r.PrivilegedCreators })
	wantErr(t, "unsupported version", err, ErrUnsupportedRoomVersion, 400, "M_INCOMPATIBLE_ROOM_VERSION")
	for _, bad := range []string{`[]`, `{"room_version":10,"event":{}}`, `{"room_version":"10"}`, `{"room_version":"10","event":[]}`, `{`} {
		if _, _, err := ParseMakeResponse([]byte(bad), nil); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func member(sender, target, membership string, content map[string]any) roomtest.Event {
	if content == nil {
		content = map[string]any{}
	}
	content["membership"] = membership
	return roomtest.Event{Type: "m.room.member", Sender: sender, StateKey: roomtest.Str(target), Content: content, Unchecked: true}
}

func TestCheckSignRequestRefusals(t *testing.T) {
	t.Parallel()
	r := newRoom(t, "10")
	ctx := context.Background()
	good := must[*event.PDU](t)(r.Build(member(bob, bob, "join", nil)))
	req := SignRequest{Rules: r.Rules, Origin: "b.test", OurServer: "a.test", RoomID: r.ID, EventID: good.EventID(), Membership: Join, Event: good.JSON(), Keys: r}
	if _, err := CheckSignRequest(ctx, req); err != nil {
		t.Fatal(err)
	}
	try := func(name string, mod func(*SignRequest), sentinel error, status int, errcode string) {
		t.Helper()
		q := req
		mod(&q)
		_, err := CheckSignRequest(ctx, q)
		wantErr(t, name, err, sentinel, status, errcode)
	}
	with := func(ev *event.PDU) func(*SignRequest) {
		return func(q *SignRequest) { q.Event, q.EventID = ev.JSON(), ev.EventID() }
	}
	try("event ID", func(q *SignRequest) { q.EventID = "$other" }, ErrBadEvent, 400, "M_BAD_JSON")
	try("room", func(q *SignRequest) { q.RoomID = "!other:a.test" }, ErrBadEvent, 400, "M_BAD_JSON")
	try("membership", func(q *SignRequest) { q.Membership = Leave }, ErrBadEvent, 400, "M_BAD_JSON")
	try("origin", func(q *SignRequest) { q.Origin = "c.test" }, ErrSenderNotOrigin, 403, "M_FORBIDDEN")
	try("not JSON", func(q *SignRequest) { q.Event = []byte(`{`) }, ErrBadEvent, 400, "M_BAD_JSON")
	try("state_key", with(must[*event.PDU](t)(r.Build(member(bob, "@eve:b.test", "join", nil)))), ErrBadEvent, 400, "M_BAD_JSON")
	try("type", with(must[*event.PDU](t)(r.Build(roomtest.Event{Type: "m.room.message", Sender: bob, Unchecked: true}))), ErrBadEvent, 400, "M_BAD_JSON")
	for _, f := range []roomtest.Forgery{roomtest.BadSignature, roomtest.WrongServerSignature, roomtest.WrongContentHash} {
		forged := must[*event.PDU](t)(event.Parse(r.Rules, r.Forge(f, member(bob, bob, "join", nil)).JSON))
		try(f.String(), with(forged), ErrSignature, 403, "M_FORBIDDEN")
	}
	try("via another server", with(must[*event.PDU](t)(r.Build(member(bob, bob, "join", map[string]any{"join_authorised_via_users_server": "@carol:c.test"})))), ErrBadEvent, 400, "M_BAD_JSON")
}

func TestInvite(t *testing.T) {
	t.Parallel()
	r := newRoom(t, "10")
	ctx := context.Background()
	inv := must[*event.PDU](t)(r.Build(member(alice, bob, "invite", nil)))
	req := InviteRequest{RoomVersion: "10", Origin: "a.test", OurServer: "b.test", RoomID: r.ID, EventID: inv.EventID(), Event: inv.JSON(), Keys: r}
	ev, rules, err := CheckInvite(ctx, req)
	if err != nil || rules.ID != "10" || ev.EventID() != inv.EventID() {
		t.Fatal(err)
	}
	signed := must[*event.PDU](t)(Countersign(ev, "b.test", r.Keys.Key("b.test")))
	if err := signing.VerifyEvent(ctx, rules, signed.JSON(), r); err != nil || !gjson.GetBytes(signed.JSON(), "signatures.b\\.test").Exists() {
		t.Fatal(err)
	}
	try := func(name string, mod func(*InviteRequest), sentinel error, status int, errcode string) {
		t.Helper()
		q := req
		mod(&q)
		_, _, err := CheckInvite(ctx, q)
		wantErr(t, name, err, sentinel, status, errcode)
	}
	try("unknown version", func(q *InviteRequest) { q.RoomVersion = "99" }, ErrUnsupportedRoomVersion, 400, "M_INCOMPATIBLE_ROOM_VERSION")
	try("unsupported", func(q *InviteRequest) { q.Supported = func(roomversion.Rules) bool { return false } }, ErrUnsupportedRoomVersion, 400, "M_INCOMPATIBLE_ROOM_VERSION")
	try("invitee not ours", func(q *InviteRequest) { q.OurServer = "c.test" }, ErrBadEvent, 403, "M_FORBIDDEN")
	try("origin", func(q *InviteRequest) { q.Origin = "b.test" }, ErrSenderNotOrigin, 403, "M_FORBIDDEN")
	try("event ID", func(q *InviteRequest) { q.EventID = "$x" }, ErrBadEvent, 400, "M_BAD_JSON")
	join := must[*event.PDU](t)(r.Build(member(alice, alice, "join", nil)))
	try("not an invite", func(q *InviteRequest) { q.Event, q.EventID = join.JSON(), join.EventID() }, ErrBadEvent, 400, "M_BAD_JSON")
	forged := r.Forge(roomtest.BadSignature, member(alice, bob, "invite", nil))
	try("signature", func(q *InviteRequest) { q.Event, q.EventID = forged.JSON, "" }, ErrSignature, 403, "M_FORBIDDEN")
}

func TestCheckInviteRoomState(t *testing.T) {
	t.Parallel()
	v10 := must[roomversion.Rules](t)(roomversion.Get("10"))
	v1 := must[roomversion.Rules](t)(roomversion.Get("1"))
	raw := func(s ...string) []json.RawMessage {
		out := make([]json.RawMessage, len(s))
		for i, x := range s {
			out[i] = json.RawMessage(x)
		}
		return out
	}
	create := `{"type":"m.room.create","state_key":"","sender":"@a:a","content":{"room_version":"10"}}`
	if err := CheckInviteRoomState(v10, "!r:a", raw(create, `{"type":"m.room.name","state_key":"","content":{"name":"x"}}`)); err != nil {
		t.Fatal(err)
	}
	if err := CheckInviteRoomState(v1, "!r:a", raw(`{"type":"m.room.create","content":{}}`)); err != nil {
		t.Fatal(err)
	}
	for name, st := range map[string][]json.RawMessage{
		"no create":     raw(`{"type":"m.room.name","content":{}}`),
		"wrong version": raw(`{"type":"m.room.create","content":{"room_version":"9"}}`),
		"other room":    raw(create, `{"type":"m.room.name","room_id":"!x:a","content":{}}`),
		"not object":    raw(create, `7`),
		"no type":       raw(create, `{"content":{}}`),
		"too many":      raw(append([]string{create}, strings.Split(strings.Repeat(create+"\n", 100), "\n")[:100]...)...),
	} {
		err := CheckInviteRoomState(v10, "!r:a", st)
		wantErr(t, name, err, ErrInviteRoomState, 400, "M_MISSING_PARAM")
	}
}

// TestSendJoinResponseBadInput: every way a send_join answer can be bad.
func TestSendJoinResponseBadInput(t *testing.T) {
	t.Parallel()
	r := newRoom(t, "10")
	r.SetState(alice, "m.room.name", "", map[string]string{"name": "n"})
	topic := r.SetState(alice, "m.room.topic", "", map[string]string{"topic": "t"})
	ctx := context.Background()
	join := buildJoin(t, r)
	check := func(answer []byte) (*JoinedRoom, error) {
		return CheckSendJoinResponse(ctx, SendJoinCheck{Rules: r.Rules, Join: join, Response: answer, Keys: r, MaxEvents: 50})
	}
	without := func(id string) func(s, c []json.RawMessage) ([]json.RawMessage, []json.RawMessage) {
		return func(s, c []json.RawMessage) ([]json.RawMessage, []json.RawMessage) {
			drop := func(l []json.RawMessage) (out []json.RawMessage) {
				for _, e := range l {
					if e2 := must[*event.PDU](t)(event.Parse(r.Rules, e)); e2.EventID() != id {
						out = append(out, e)
					}
				}
				return out
			}
			return drop(s), drop(c)
		}
	}
	state := r.State()
	create, joinRules, aliceJoin := state.Create(), state.JoinRules(), state.Member(alice)

	wantBad := func(name string, answer []byte) {
		t.Helper()
		if _, err := check(answer); !errors.Is(err, ErrBadResponse) {
			t.Fatalf("%s: %v", name, err)
		}
	}
	wantBad("not JSON", []byte(`{`))
	wantBad("not lists", []byte(`{"state":{},"auth_chain":[]}`))
	wantBad("members omitted", []byte(`{"state":[],"auth_chain":[],"members_omitted":true}`))
	wantBad("no create", sendJoinAnswer(r, without(create.EventID())))
	wantBad("too many events", sendJoinAnswer(r, func(s, c []json.RawMessage) ([]json.RawMessage, []json.RawMessage) {
		for len(c) <= 50 {
			c = append(c, c[0])
		}
		return s, c
	}))
	// A second create event of the same room, and one of another version.
	create2 := must[*event.PDU](t)(r.Build(roomtest.Event{Type: "m.room.create", Sender: alice, StateKey: roomtest.Str(""),
		Content: map[string]any{"room_version": "10", "creator": alice, "x": 1}, PrevEvents: []string{}, AuthEvents: []string{}, Unchecked: true}))
	wantBad("two creates", sendJoinAnswer(r, func(s, c []json.RawMessage) ([]json.RawMessage, []json.RawMessage) {
		return s, append(c, create2.JSON())
	}))
	create9 := must[*event.PDU](t)(r.Build(roomtest.Event{Type: "m.room.create", Sender: alice, StateKey: roomtest.Str(""),
		Content: map[string]any{"room_version": "9", "creator": alice}, PrevEvents: []string{}, AuthEvents: []string{}, Unchecked: true}))
	wantBad("create of another version", sendJoinAnswer(r, func(s, c []json.RawMessage) ([]json.RawMessage, []json.RawMessage) {
		s, c = without(create.EventID())(s, c)
		return append(s, create9.JSON()), c
	}))
	// A state entry twice.
	topic2 := must[*event.PDU](t)(r.Build(roomtest.Event{Type: "m.room.topic", Sender: alice, StateKey: roomtest.Str(""), Content: map[string]string{"topic": "t2"}}))
	wantBad("duplicate state entry", sendJoinAnswer(r, func(s, c []json.RawMessage) ([]json.RawMessage, []json.RawMessage) {
		return append(s, topic2.JSON()), c
	}))
	// A message event in the state.
	msg := must[*event.PDU](t)(r.Build(roomtest.Event{Type: "m.room.message", Sender: alice}))
	wantBad("message in state", sendJoinAnswer(r, func(s, c []json.RawMessage) ([]json.RawMessage, []json.RawMessage) {
		return append(s, msg.JSON()), c
	}))
	// The join rules event with a bad signature: dropped, and the join is
	// then refused by the state (no join rules: invite only).
	_, err := check(sendJoinAnswer(r, func(s, c []json.RawMessage) ([]json.RawMessage, []json.RawMessage) {
		for i, e := range s {
			if strings.Contains(string(e), `"m.room.join_rules"`) {
				s[i], _ = sjson.SetBytes(e, "signatures.a\\.test."+roomtest.KeyID, "AAAA")
			}
		}
		_, c = without(joinRules.EventID())(nil, c)
		return s, c
	}))
	if !errors.Is(err, ErrBadResponse) || !errors.Is(err, eventauth.ErrJoin) {
		t.Fatalf("join rules forged: %v", err)
	}
	// A state event whose content was changed: kept redacted.
	jr, err := check(sendJoinAnswer(r, func(s, c []json.RawMessage) ([]json.RawMessage, []json.RawMessage) {
		for i, e := range s {
			if strings.Contains(string(e), `"m.room.topic"`) {
				s[i], _ = sjson.SetBytes(e, "content.topic", "changed")
			}
		}
		_, c = without(topic.EventID())(nil, c)
		return s, c
	}))
	if err != nil || len(jr.Redacted) != 1 || jr.Redacted[0] != topic.EventID() || string(jr.State[eventauth.StateKey{Type: "m.room.topic"}].Content()) != `{}` {
		t.Fatalf("redacted topic: %v %+v", err, jr)
	}
	// Alice's join missing from the answer: everything alice sent after
	// it is dropped (its auth event is missing), and bob's join is then
	// refused.
	wantBad("alice's join missing", sendJoinAnswer(r, without(aliceJoin.EventID())))
	// An event of another room in the chain is dropped, the rest passes.
	other := roomtest.New(t, roomtest.Options{Version: "10", Creator: "@carol:c.test", Keys: r.Keys})
	otherPL := other.State().PowerLevels()
	jr, err = check(sendJoinAnswer(r, func(s, c []json.RawMessage) ([]json.RawMessage, []json.RawMessage) {
		return s, append(c, otherPL.JSON())
	}))
	if err != nil || len(jr.Dropped) != 1 || jr.Dropped[0].EventID != otherPL.EventID() {
		t.Fatalf("other room's event: %v %+v", err, jr)
	}
	// An event that fails its own auth events (a name set by a
	// non-member) is dropped from the state.
	eve := must[*event.PDU](t)(r.Build(roomtest.Event{Type: "m.room.name", Sender: "@eve:b.test", StateKey: roomtest.Str(""), Content: map[string]string{"name": "evil"}, Unchecked: true}))
	jr, err = check(sendJoinAnswer(r, func(s, c []json.RawMessage) ([]json.RawMessage, []json.RawMessage) {
		for i, e := range s {
			if strings.Contains(string(e), `"m.room.name"`) {
				s[i] = eve.JSON()
			}
		}
		return s, c
	}))
	if err != nil || jr.State[eventauth.StateKey{Type: "m.room.name"}] != nil || len(jr.Dropped) != 1 || !errors.Is(jr.Dropped[0].Err, eventauth.ErrNotJoined) {
		t.Fatalf("unauthorised state event: %v %+v", err, jr)
	}
}

// TestAuthAllDeepChain: a long chain of auth events is checked without
// recursion.
func TestAuthAllDeepChain(t *testing.T) {
	t.Parallel()
	r := newRoom(t, "10")
	for i := range 300 {
		r.SetPowerLevels(alice, map[string]any{"users": map[string]int{alice: 100}, "ban": 50 + i%2})
	}
	byID := map[string]*event.PDU{}
	for _, ev := range r.All() {
		byID[ev.EventID()] = ev
	}
	v := authAll(byID, r.CreateEvent())
	for id, err := range v {
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
	}
	if len(v) != len(byID) {
		t.Fatalf("%d verdicts for %d events", len(v), len(byID))
	}
}

// BenchmarkCheckSendJoinResponse checks a send_join answer of a room with
// 1000 members (about 1000 state events, also listed in the auth chain).
func BenchmarkCheckSendJoinResponse(b *testing.B) {
	r := newRoom(b, "10")
	for i := range 1000 {
		r.Join(fmt.Sprintf("@u%d:a.test", i))
	}
	join := buildJoin(b, r)
	answer := sendJoinAnswer(r, nil)
	n := len(r.State())
	b.ReportAllocs()
	b.SetBytes(int64(len(answer)))
	for b.Loop() {
		jr, err := CheckSendJoinResponse(context.Background(), SendJoinCheck{Rules: r.Rules, Join: join, Response: answer, Keys: r})
		if err != nil || len(jr.State) != n {
			b.Fatal(err)
		}
	}
}

func TestCountersignWithoutKey(t *testing.T) {
	t.Parallel()
	r := newRoom(t, "10")
	_, err := Countersign(r.Last(), "a.test", nil)
	wantErr(t, "no key", err, ErrBadEvent, 500, "M_UNKNOWN")
}
