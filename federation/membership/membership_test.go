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
	"github.com/gomatrixlib/gomatrixlib/internal/roomfix"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
	"github.com/gomatrixlib/gomatrixlib/signing"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

var keys = roomfix.Keys{"a.example": true, "b.example": true}

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

func template(t *testing.T, r *roomfix.Room, user, membership string) *Template {
	t.Helper()
	return must[*Template](t)(BuildTemplate(TemplateRequest{Rules: r.Rules, RoomID: r.ID, UserID: user, Membership: membership,
		Origin: "a.example", Prev: []*event.PDU{r.Events[r.Latest[0]]}, State: lookup(r.State)}))
}

// sendJoinAnswer is what a resident answers: the state and the auth chain
// (here: every event of the room).
func sendJoinAnswer(r *roomfix.Room, mod func(state, chain []json.RawMessage) ([]json.RawMessage, []json.RawMessage)) []byte {
	var state, chain []json.RawMessage
	for _, ev := range r.State {
		state = append(state, ev.JSON())
	}
	for _, ev := range r.Events {
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
			r := must[*roomfix.Room](t)(roomfix.New(v, "@alice:a.example"))
			must[*event.PDU](t)(r.Add("m.room.topic", "@alice:a.example", "", `{"topic":"t"}`))
			ctx := context.Background()
			if err := CheckMakeRequest(MakeRequest{Origin: "b.example", UserID: "@bob:b.example", Membership: Join, Versions: []string{"x", v}, Rules: r.Rules}); err != nil {
				t.Fatal(err)
			}
			tmpl := template(t, r, "@bob:b.example", Join)
			body := must[[]byte](t)(json.Marshal(tmpl))

			rules, raw, err := ParseMakeResponse(body, nil)
			if err != nil || rules.ID != v {
				t.Fatal(rules.ID, err)
			}
			key := roomfix.Key("b.example")
			join := must[*event.PDU](t)(BuildEvent(BuildRequest{Rules: rules, Template: raw, RoomID: r.ID, UserID: "@bob:b.example", Membership: Join, ServerName: "b.example", Key: key}))
			if join.Origin() != "" && join.Origin() != "b.example" {
				t.Fatalf("origin %q", join.Origin())
			}
			if join.OriginServerTS() == gjson.GetBytes(raw, "origin_server_ts").Int() && join.OriginServerTS() == 0 {
				t.Fatal("no timestamp")
			}

			got := must[*event.PDU](t)(CheckSignRequest(ctx, SignRequest{Rules: r.Rules, Origin: "b.example", OurServer: "a.example", RoomID: r.ID, EventID: join.EventID(), Membership: Join, Event: join.JSON(), Keys: keys}))
			signed := must[*event.PDU](t)(Countersign(got, "a.example", roomfix.Key("a.example")))
			if !gjson.GetBytes(signed.JSON(), "signatures.a\\.example").Exists() || signed.EventID() != join.EventID() {
				t.Fatal("not countersigned")
			}
			if err := signing.VerifyEvent(ctx, r.Rules, signed.JSON(), keys); err != nil {
				t.Fatal(err)
			}

			answer := sendJoinAnswer(r, nil)
			answer, _ = sjson.SetRawBytes(answer, "event", signed.JSON())
			jr, err := CheckSendJoinResponse(ctx, SendJoinCheck{Rules: rules, Join: join, Response: answer, Keys: keys})
			if err != nil {
				t.Fatal(err)
			}
			if len(jr.State) != len(r.State) || len(jr.Dropped) != 0 || len(jr.StateEvents) != len(r.State) {
				t.Fatalf("state %d of %d, dropped %v", len(jr.State), len(r.State), jr.Dropped)
			}
			for k, ev := range r.State {
				if jr.State[k] == nil || jr.State[k].EventID() != ev.EventID() {
					t.Fatalf("state entry %v differs", k)
				}
			}
			if !gjson.GetBytes(jr.Join.JSON(), "signatures.a\\.example").Exists() {
				t.Fatal("the countersigned join was not taken")
			}
		})
	}
}

func TestCheckMakeRequest(t *testing.T) {
	t.Parallel()
	v10 := must[roomversion.Rules](t)(roomversion.Get("10"))
	v6 := must[roomversion.Rules](t)(roomversion.Get("6"))
	wantErr(t, "other server", CheckMakeRequest(MakeRequest{Origin: "b.example", UserID: "@bob:c.example", Membership: Join, Versions: []string{"10"}, Rules: v10}), ErrSenderNotOrigin, 403, "M_FORBIDDEN")
	err := CheckMakeRequest(MakeRequest{Origin: "b.example", UserID: "@bob:b.example", Membership: Join, Versions: []string{"1", "2", "11"}, Rules: v10})
	wantErr(t, "version not in ver", err, ErrIncompatibleRoomVersion, 400, "M_INCOMPATIBLE_ROOM_VERSION")
	var me *Error
	errors.As(err, &me)
	if b, _ := json.Marshal(me); me.RoomVersion != "10" || !strings.Contains(string(b), `"room_version":"10"`) || !strings.Contains(string(b), `"errcode":"M_INCOMPATIBLE_ROOM_VERSION"`) {
		t.Fatalf("body %s", b)
	}
	wantErr(t, "no ver", CheckMakeRequest(MakeRequest{Origin: "b.example", UserID: "@bob:b.example", Membership: Join, Rules: v10}), ErrIncompatibleRoomVersion, 400, "M_INCOMPATIBLE_ROOM_VERSION")
	wantErr(t, "knock without ver", CheckMakeRequest(MakeRequest{Origin: "b.example", UserID: "@bob:b.example", Membership: Knock, Rules: v10}), ErrIncompatibleRoomVersion, 400, "M_INCOMPATIBLE_ROOM_VERSION")
	wantErr(t, "knock in v6", CheckMakeRequest(MakeRequest{Origin: "b.example", UserID: "@bob:b.example", Membership: Knock, Versions: []string{"6"}, Rules: v6}), ErrNotAllowed, 403, "M_FORBIDDEN")
	wantErr(t, "bad user", CheckMakeRequest(MakeRequest{Origin: "b.example", UserID: "bob", Membership: Join, Rules: v10}), ErrBadEvent, 400, "M_INVALID_PARAM")
	wantErr(t, "bad membership", CheckMakeRequest(MakeRequest{Origin: "b.example", UserID: "@bob:b.example", Membership: "ban", Rules: v10}), ErrBadEvent, 400, "M_INVALID_PARAM")
	if err := CheckMakeRequest(MakeRequest{Origin: "b.example", UserID: "@bob:b.example", Membership: Leave, Rules: v10}); err != nil {
		t.Fatal(err)
	}
}

func TestBuildTemplateRefused(t *testing.T) {
	t.Parallel()
	r := must[*roomfix.Room](t)(roomfix.New("10", "@alice:a.example"))
	must[*event.PDU](t)(r.Add("m.room.member", "@alice:a.example", "@eve:b.example", `{"membership":"ban"}`))
	req := TemplateRequest{Rules: r.Rules, RoomID: r.ID, UserID: "@eve:b.example", Membership: Join, Origin: "a.example",
		Prev: []*event.PDU{r.Events[r.Latest[0]]}, State: lookup(r.State)}
	_, err := BuildTemplate(req)
	wantErr(t, "banned", err, ErrNotAllowed, 403, "M_FORBIDDEN")
	if !errors.Is(err, eventauth.ErrJoin) && !errors.Is(err, eventauth.ErrRejected) {
		t.Fatalf("no auth rule in %v", err)
	}
	must[*event.PDU](t)(r.Add("m.room.join_rules", "@alice:a.example", "", `{"join_rule":"invite"}`))
	req.UserID, req.Prev = "@bob:b.example", []*event.PDU{r.Events[r.Latest[0]]}
	_, err = BuildTemplate(req)
	wantErr(t, "invite only", err, ErrNotAllowed, 403, "M_FORBIDDEN")
	// Leave for a user who is not in the room is refused too.
	req.Membership = Leave
	_, err = BuildTemplate(req)
	wantErr(t, "leave when absent", err, ErrNotAllowed, 403, "M_FORBIDDEN")
	req.Prev = nil
	_, err = BuildTemplate(req)
	wantErr(t, "no prev", err, ErrBadEvent, 400, "M_BAD_JSON")
	req.Prev, req.Content = []*event.PDU{r.Events[r.Latest[0]]}, []byte(`[1]`)
	_, err = BuildTemplate(req)
	wantErr(t, "content not object", err, ErrBadEvent, 400, "M_BAD_JSON")
}

func TestBuildEventRefusesBadTemplates(t *testing.T) {
	t.Parallel()
	r := must[*roomfix.Room](t)(roomfix.New("10", "@alice:a.example"))
	raw := []byte(template(t, r, "@bob:b.example", Join).Event)
	req := BuildRequest{Rules: r.Rules, RoomID: r.ID, UserID: "@bob:b.example", Membership: Join, ServerName: "b.example", Key: roomfix.Key("b.example")}
	for _, tc := range []struct{ name, path, value string }{
		{"other sender", "sender", `"@eve:b.example"`},
		{"other state_key", "state_key", `"@eve:b.example"`},
		{"other room", "room_id", `"!other:a.example"`},
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

func TestCheckSignRequestRefusals(t *testing.T) {
	t.Parallel()
	r := must[*roomfix.Room](t)(roomfix.New("10", "@alice:a.example"))
	ctx := context.Background()
	build := func(sender, stateKey, membership string, key *signing.Key) *event.PDU {
		return must[*event.PDU](t)(r.BuildOn(r.State, r.Latest, key, "m.room.member", sender, stateKey, `{"membership":"`+membership+`"}`))
	}
	good := build("@bob:b.example", "@bob:b.example", "join", roomfix.Key("b.example"))
	req := SignRequest{Rules: r.Rules, Origin: "b.example", OurServer: "a.example", RoomID: r.ID, EventID: good.EventID(), Membership: Join, Event: good.JSON(), Keys: keys}
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
	try("event ID", func(q *SignRequest) { q.EventID = "$other" }, ErrBadEvent, 400, "M_BAD_JSON")
	try("room", func(q *SignRequest) { q.RoomID = "!other:a.example" }, ErrBadEvent, 400, "M_BAD_JSON")
	try("membership", func(q *SignRequest) { q.Membership = Leave }, ErrBadEvent, 400, "M_BAD_JSON")
	try("origin", func(q *SignRequest) { q.Origin = "c.example" }, ErrSenderNotOrigin, 403, "M_FORBIDDEN")
	try("not JSON", func(q *SignRequest) { q.Event = []byte(`{`) }, ErrBadEvent, 400, "M_BAD_JSON")
	other := build("@bob:b.example", "@eve:b.example", "join", roomfix.Key("b.example"))
	try("state_key", func(q *SignRequest) { q.Event, q.EventID = other.JSON(), other.EventID() }, ErrBadEvent, 400, "M_BAD_JSON")
	msg := must[*event.PDU](t)(r.Build("m.room.message", "@bob:b.example", "-", `{}`))
	try("type", func(q *SignRequest) { q.Event, q.EventID = msg.JSON(), msg.EventID() }, ErrBadEvent, 400, "M_BAD_JSON")
	forged := build("@bob:b.example", "@bob:b.example", "join", roomfix.Key("c.example"))
	try("signature", func(q *SignRequest) { q.Event, q.EventID = forged.JSON(), forged.EventID() }, ErrSignature, 403, "M_FORBIDDEN")
	via := must[*event.PDU](t)(r.BuildOn(r.State, r.Latest, roomfix.Key("b.example"), "m.room.member", "@bob:b.example", "@bob:b.example", `{"membership":"join","join_authorised_via_users_server":"@carol:c.example"}`))
	try("via another server", func(q *SignRequest) { q.Event, q.EventID = via.JSON(), via.EventID() }, ErrBadEvent, 400, "M_BAD_JSON")
}

func TestInvite(t *testing.T) {
	t.Parallel()
	r := must[*roomfix.Room](t)(roomfix.New("10", "@alice:a.example"))
	ctx := context.Background()
	inv := must[*event.PDU](t)(r.Build("m.room.member", "@alice:a.example", "@bob:b.example", `{"membership":"invite"}`))
	req := InviteRequest{RoomVersion: "10", Origin: "a.example", OurServer: "b.example", RoomID: r.ID, EventID: inv.EventID(), Event: inv.JSON(), Keys: keys}
	ev, rules, err := CheckInvite(ctx, req)
	if err != nil || rules.ID != "10" || ev.EventID() != inv.EventID() {
		t.Fatal(err)
	}
	signed := must[*event.PDU](t)(Countersign(ev, "b.example", roomfix.Key("b.example")))
	if err := signing.VerifyEvent(ctx, rules, signed.JSON(), keys); err != nil || !gjson.GetBytes(signed.JSON(), "signatures.b\\.example").Exists() {
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
	try("invitee not ours", func(q *InviteRequest) { q.OurServer = "c.example" }, ErrBadEvent, 403, "M_FORBIDDEN")
	try("origin", func(q *InviteRequest) { q.Origin = "b.example" }, ErrSenderNotOrigin, 403, "M_FORBIDDEN")
	try("event ID", func(q *InviteRequest) { q.EventID = "$x" }, ErrBadEvent, 400, "M_BAD_JSON")
	join := must[*event.PDU](t)(r.Build("m.room.member", "@alice:a.example", "@alice:a.example", `{"membership":"join"}`))
	try("not an invite", func(q *InviteRequest) { q.Event, q.EventID = join.JSON(), join.EventID() }, ErrBadEvent, 400, "M_BAD_JSON")
	tampered, _ := sjson.SetBytes(inv.JSON(), "origin_server_ts", 5)
	try("signature", func(q *InviteRequest) { q.Event, q.EventID = tampered, "" }, ErrSignature, 403, "M_FORBIDDEN")
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
	r := must[*roomfix.Room](t)(roomfix.New("10", "@alice:a.example"))
	must[*event.PDU](t)(r.Add("m.room.name", "@alice:a.example", "", `{"name":"n"}`))
	topic := must[*event.PDU](t)(r.Add("m.room.topic", "@alice:a.example", "", `{"topic":"t"}`))
	ctx := context.Background()
	raw := []byte(template(t, r, "@bob:b.example", Join).Event)
	join := must[*event.PDU](t)(BuildEvent(BuildRequest{Rules: r.Rules, Template: raw, RoomID: r.ID, UserID: "@bob:b.example", Membership: Join, ServerName: "b.example", Key: roomfix.Key("b.example")}))
	check := func(answer []byte) (*JoinedRoom, error) {
		return CheckSendJoinResponse(ctx, SendJoinCheck{Rules: r.Rules, Join: join, Response: answer, Keys: keys, MaxEvents: 50})
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
	create := r.State.Create()
	joinRules := r.State.JoinRules()
	alice := r.State.Member("@alice:a.example")

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
	// A second create event (of another room version) in the chain.
	other := must[*roomfix.Room](t)(roomfix.New("10", "@carol:b.example"))
	create2 := must[*event.PDU](t)(r.BuildOn(eventauth.StateMap{}, nil, roomfix.Key("a.example"), "m.room.create", "@alice:a.example", "", `{"room_version":"10","creator":"@alice:a.example","x":1}`))
	wantBad("two creates", sendJoinAnswer(r, func(s, c []json.RawMessage) ([]json.RawMessage, []json.RawMessage) {
		return s, append(c, create2.JSON())
	}))
	// The create event of another room version.
	v9 := must[*roomfix.Room](t)(roomfix.New("9", "@alice:a.example"))
	v9create := must[*event.PDU](t)(event.Parse(r.Rules, v9.State.Create().JSON()))
	wantBad("create of another version", sendJoinAnswer(r, func(s, c []json.RawMessage) ([]json.RawMessage, []json.RawMessage) {
		s, c = without(create.EventID())(s, c)
		return append(s, v9create.JSON()), c
	}))
	// A state entry twice.
	topic2 := must[*event.PDU](t)(r.BuildOn(r.State, r.Latest, roomfix.Key("a.example"), "m.room.topic", "@alice:a.example", "", `{"topic":"t2"}`))
	wantBad("duplicate state entry", sendJoinAnswer(r, func(s, c []json.RawMessage) ([]json.RawMessage, []json.RawMessage) {
		return append(s, topic2.JSON()), c
	}))
	// A message event in the state.
	msg := must[*event.PDU](t)(r.Build("m.room.message", "@alice:a.example", "-", `{}`))
	wantBad("message in state", sendJoinAnswer(r, func(s, c []json.RawMessage) ([]json.RawMessage, []json.RawMessage) {
		return append(s, msg.JSON()), c
	}))
	// The join rules event with a bad signature: dropped, and the join is
	// then refused by the state (no join rules: invite only).
	_, err := check(sendJoinAnswer(r, func(s, c []json.RawMessage) ([]json.RawMessage, []json.RawMessage) {
		for i, e := range s {
			if strings.Contains(string(e), `"m.room.join_rules"`) {
				s[i], _ = sjson.SetBytes(e, "signatures.a\\.example.ed25519:1", "AAAA")
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
	// refused (no join rules, no power levels).
	_, err = check(sendJoinAnswer(r, without(alice.EventID())))
	if !errors.Is(err, ErrBadResponse) {
		t.Fatalf("alice's join missing: %v", err)
	}
	// An event of another room in the chain is dropped, the rest passes.
	jr, err = check(sendJoinAnswer(r, func(s, c []json.RawMessage) ([]json.RawMessage, []json.RawMessage) {
		return s, append(c, other.State.PowerLevels().JSON())
	}))
	if err != nil || len(jr.Dropped) != 1 || jr.Dropped[0].EventID != other.State.PowerLevels().EventID() {
		t.Fatalf("other room's event: %v %+v", err, jr)
	}
	// An event that fails its own auth events (a topic by a non-member)
	// is dropped from the state.
	eve := must[*event.PDU](t)(r.BuildOn(r.State, r.Latest, roomfix.Key("b.example"), "m.room.name", "@eve:b.example", "", `{"name":"evil"}`))
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

// TestAuthChainCycle: auth events that refer to each other cannot loop.
func TestAuthAllDeepChain(t *testing.T) {
	t.Parallel()
	r := must[*roomfix.Room](t)(roomfix.New("10", "@alice:a.example"))
	for i := range 300 {
		must[*event.PDU](t)(r.Add("m.room.power_levels", "@alice:a.example", "", fmt.Sprintf(`{"users":{"@alice:a.example":100},"ban":%d}`, 50+i%2)))
	}
	byID := map[string]*event.PDU{}
	for id, ev := range r.Events {
		byID[id] = ev
	}
	v := authAll(byID, r.State.Create())
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
// 1000 members (about 1000 state events and 1000 auth chain events).
func BenchmarkCheckSendJoinResponse(b *testing.B) {
	r, err := roomfix.New("10", "@alice:a.example")
	if err != nil {
		b.Fatal(err)
	}
	for i := range 1000 {
		u := fmt.Sprintf("@u%d:a.example", i)
		if _, err := r.Add("m.room.member", u, u, `{"membership":"join"}`); err != nil {
			b.Fatal(err)
		}
	}
	tmpl, err := BuildTemplate(TemplateRequest{Rules: r.Rules, RoomID: r.ID, UserID: "@bob:b.example", Membership: Join,
		Origin: "a.example", Prev: []*event.PDU{r.Events[r.Latest[0]]}, State: lookup(r.State)})
	if err != nil {
		b.Fatal(err)
	}
	join, err := BuildEvent(BuildRequest{Rules: r.Rules, Template: tmpl.Event, RoomID: r.ID, UserID: "@bob:b.example", Membership: Join, ServerName: "b.example", Key: roomfix.Key("b.example")})
	if err != nil {
		b.Fatal(err)
	}
	answer := sendJoinAnswer(r, nil)
	b.ReportAllocs()
	b.SetBytes(int64(len(answer)))
	for b.Loop() {
		jr, err := CheckSendJoinResponse(context.Background(), SendJoinCheck{Rules: r.Rules, Join: join, Response: answer, Keys: keys})
		if err != nil || len(jr.State) != len(r.State) {
			b.Fatal(err)
		}
	}
}
